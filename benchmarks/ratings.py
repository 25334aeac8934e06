"""Recommendations on a real interaction log: the MovieLens 100K ratings file (`u.data`: user, item, rating, unix
time, tab-separated; 100,000 ratings of 943 users, 1997-09-20 .. 1998-04-22), set up as a shop would, with a
sources file and `--set` only, each rating an interaction of the user with the item.

The stage chooses its grid point on the 14 days before the test window, refits, and reports the last 14 days; this
prints its figures beside the popularity baseline of the same run, read back from MLflow. The file is not in the
repository (its licence forbids redistribution): download it from GroupLens and pass its path.

    python benchmarks/ratings.py --ratings ~/ml-100k/u.data [--set models.recommendations.grid.alpha=[1.0]]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import yaml

SOURCE = {
    "format": "text",
    "table": "orders",
    "names": ["user", "item", "rating", "ts"],
    "separator": "\\t",
    "mapping": {"user": "customer_id", "item": "item_id"},
    "columns": {
        "order_id": "concat(user, '-', item)",
        "line_no": "1",
        "line_type": "'purchase'",
        "order_ts": "timestamp_seconds(cast(ts AS bigint))",
        "quantity": "1",
        "unit_price": "0",
        "discount": "0",
    },
    "params": {"earliest_order_date": "1997-01-01"},
}


def last_day(path: Path) -> datetime:
    with path.open() as lines:
        return datetime.fromtimestamp(max(int(line.split("\t")[3]) for line in lines if line.strip()), UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=Path, required=True, help="the MovieLens 100K u.data file")
    parser.add_argument("--workdir", type=Path, help="lake and sources file here (default: a temporary folder)")
    parser.add_argument("--set", action="append", default=[], help="more overrides for train_recommendations")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ratings-"))
    work.mkdir(parents=True, exist_ok=True)
    sources = work / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": {"ratings": {"path": str(args.ratings.resolve()), **SOURCE}}}))
    as_of = (last_day(args.ratings) + timedelta(days=1)).date().isoformat()
    common = ["--as-of", as_of, "--set", f"sources_file={sources}", "--set", f"lake.root={work / 'lake'}"]
    cli = [str(Path(sys.executable).with_name("audiencelake"))]
    started = time.perf_counter()
    subprocess.run([*cli, "ingest", *common], check=True, env=os.environ)
    ingested = time.perf_counter()
    train = ["--set", "models.recommendations.history_days=240", *(x for s in args.set for x in ("--set", s))]
    subprocess.run([*cli, "train_recommendations", *common, *train], check=True, env=os.environ)
    trained = time.perf_counter()
    mlflow.set_tracking_uri(f"sqlite:///{work / 'lake'}/mlflow.db")
    run = mlflow.search_runs(search_all_experiments=True, order_by=["start_time DESC"], max_results=1).iloc[0]
    print(f"as of {as_of}: ingest {ingested - started:.0f} s, train_recommendations {trained - ingested:.0f} s")
    print(f"chosen on the validation window: rank {run['params.rank']}, reg {run['params.reg_param']}, "
          f"alpha {run['params.alpha']} (search {run['params.search']}, {run['params.grid']} points)")  # fmt: skip
    print(f"{'test window':<12}{'ALS':>9}{'popularity':>12}{'ratio':>8}")
    for metric in ("precision", "recall", "map", "ndcg", "coverage"):
        als, base = run[f"metrics.{metric}_at_k"], run[f"metrics.baseline_{metric}_at_k"]
        print(f"{metric + '@10':<12}{als:>9.4f}{base:>12.4f}{als / base if base else float('nan'):>8.2f}")


if __name__ == "__main__":
    main()
