"""Destination exports: `exports/<destination>/<audience>/<run_id>/` with data files and `manifest.json`.

Only treatment members leave the lake; holdout members never do. Files are written by Spark into a staging
folder, renamed to deterministic names (`part-00000.csv`, ...), checksummed, described by the manifest, and the
folder is then moved into place in one rename, so a destination never sees a partial export. Rows are
hash-partitioned and sorted by their identifier, so re-running the same run id writes byte-identical files and
the same manifest. Customer-match files carry SHA-256 hex digests of normalised email (trimmed, lower-cased) and
phone (E.164, `+` and digits) as ad platforms require; no export carries a raw email, phone or name.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.audiences.build import Built
from audiencelake.audiences.definitions import Definitions
from audiencelake.audiences.export_files import MANIFEST, STAGING, clear_staging, count_rows, publish, write_files
from audiencelake.audiences.fields import Inputs
from audiencelake.audiences.runs import activated_run, recorded
from audiencelake.core.contracts import spark_type
from audiencelake.core.errors import AudiencelakeError
from audiencelake.core.failpoints import reached
from audiencelake.core.lake import Lake
from audiencelake.core.pii import normalize_email, normalize_phone
from audiencelake.core.runs import Run
from audiencelake.identity.lookup import current_user_ids

log = logging.getLogger("audiencelake.audiences")


@dataclass(frozen=True)
class Export:
    destination: str
    audience: str
    folder: Path
    manifest: dict


def export_folder(lake: Lake, destination: str, audience: str, run_id: str) -> Path:
    return Path(local_root(lake)) / destination / audience / run_id


def local_root(lake: Lake) -> str:
    root = lake.settings.exports_root
    if root.startswith("file:"):
        root = root[len("file:") :]
    if "://" in root or root.startswith("dbfs:"):
        raise AudiencelakeError(
            f"activation.exports = {root!r}: exports need a local or mounted path (such as /Volumes/... or /dbfs/...)"
        )
    return root


def match_hashes(email: Column, phone: Column) -> list[Column]:
    """`email_sha256` and `phone_sha256`: unsalted SHA-256 hex of the normalised email and E.164 phone."""
    return [
        F.sha2(normalize_email(email), 256).alias("email_sha256"),
        F.sha2(F.concat(F.lit("+"), normalize_phone(phone)), 256).alias("phone_sha256"),
    ]


def customer_match(members: DataFrame, pii: DataFrame | None) -> DataFrame:
    """SHA-256 hex of the normalised email and E.164 phone of each member with at least one of them (none in a lake
    without silver_restricted.crm_profiles_pii: the manifest counts every member as not matched)."""
    if pii is None:
        log.warning("silver_restricted.crm_profiles_pii does not exist: no member has an email or phone to match on")
        return members.sparkSession.createDataFrame([], "email_sha256 string, phone_sha256 string")
    hashed = members.join(pii.select(F.col("customer_id").alias("user_id"), "email", "phone"), "user_id").select(
        *match_hashes(F.col("email"), F.col("phone"))
    )
    return hashed.where(F.col("email_sha256").isNotNull() | F.col("phone_sha256").isNotNull())


def export_frame(
    built: Built, definitions: Definitions, fmt: str, inputs: Inputs, run_id: str
) -> tuple[DataFrame, str]:
    """The rows a destination receives (treatment members only) and the column they are sorted by."""
    treatment = built.members.where(F.col("group") == "treatment")
    if fmt == "customer_match":
        return customer_match(treatment.select("user_id"), inputs.read("silver_restricted.crm_profiles_pii")), (
            "email_sha256"
        )
    audience = built.audience
    fields = audience.export_fields
    columns = [F.col("user_id"), F.lit(audience.name).alias("audience"), F.lit(run_id).alias("run_id")]
    if audience.send_time:
        columns.append(F.col("send_hour"))
    if fields:
        schema = T.StructType([T.StructField(f, spark_type(definitions.field_types[f])) for f in fields])
        parsed = F.from_json("reasons", schema)
        columns += [parsed[f].alias(f) for f in fields]
    return treatment.select(*columns), "user_id"


def _diff(lake: Lake, built: Built, previous_run: str | None) -> dict:
    """Adds, removes and unchanged treatment members against the previous run of the same audience (a member whose
    id was merged into another person's since counts under the surviving id)."""
    now = built.members.where(F.col("group") == "treatment").select("user_id")
    if previous_run is None:
        return {"previous_run_id": None, "added": now.count(), "removed": 0, "unchanged": 0}
    members = lake.read(lake.ref("gold", "audience_members"))
    before = members.where(
        (F.col("audience") == built.audience.name) & (F.col("run_id") == previous_run) & (F.col("group") == "treatment")
    ).select("user_id")
    before = current_user_ids(lake, before).distinct()
    both = now.join(before, "user_id").count()
    return {
        "previous_run_id": previous_run,
        "added": now.count() - both,
        "removed": before.count() - both,
        "unchanged": both,
    }


def previous_run(lake: Lake, audience: str, run_id: str) -> str | None:
    """The run of the audience recorded just before `run_id` (by first-build order), or None."""
    runs = lake.read(lake.ref("ops", "audience_runs")).where(F.col("audience") == audience)
    mine = runs.where(F.col("run_id") == run_id).select("seq").first()
    if mine is None:
        return None
    before = runs.where(F.col("seq") < mine["seq"]).orderBy(F.desc("seq")).select("run_id").first()
    return None if before is None else before["run_id"]


def export_audience(
    lake: Lake, run: Run, built: Built, destination: str, definitions: Definitions, inputs: Inputs
) -> Export:
    """Write one audience's export to one destination atomically; an identical export already in place is kept."""
    dest = definitions.destinations[destination]
    name = built.audience.name
    final = export_folder(lake, destination, name, run.run_id)
    staging = Path(local_root(lake)) / STAGING / f"{destination}.{name}.{run.run_id}.{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        df, key = export_frame(built, definitions, dest.format, inputs, run.run_id)
        df = df.cache()
        rows = df.count()
        files = write_files(df, key, dest.format, rows, lake.settings.activation.rows_per_file, staging)
        count_rows(files, staging, dest.format)
        manifest = {
            "audience": name,
            "audience_version": built.version,
            "run_id": run.run_id,
            "as_of": run.as_of.isoformat(),
            "destination": destination,
            "format": dest.format,
            "channel": built.audience.channel,
            "rule": built.rule,
            "counts": {
                "selected": built.treatment + built.holdout,
                "treatment": built.treatment,
                "holdout": built.holdout,
                "exported": rows,
                "not_matched": built.treatment - rows,
            },
            "files": files,
            "schema": [{"name": f.name, "type": f.dataType.simpleString()} for f in df.schema.fields],
            "changes": _diff(lake, built, previous_run(lake, name, run.run_id)),
            "inputs": inputs.versions,
            "funnel": [{"step": step, "users": n} for step, n in built.funnel],
        }
        df.unpersist()
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        (staging / MANIFEST).write_text(text)
        reached(f"export.{destination}.{name}")
        publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s to %s: %d rows in %d files at %s", name, destination, rows, len(files), final)
    return Export(destination, name, final, manifest)


def recorded_audiences(lake: Lake, run_id: str) -> tuple[Run, list[Built], Definitions, Inputs]:
    """The run (with the date it was built as of) and its audiences as the `audiences` stage wrote them
    (gold.audience_members and ops.audience_runs).

    Raises:
        AudiencelakeError: the run built no audiences.
    """
    state = recorded(lake, run_id)
    if state is None:
        raise AudiencelakeError(f"run '{run_id}' built no audiences; run `audiencelake audiences` first")
    run = Run(run_id=run_id, as_of=state.as_of)
    members = lake.read(lake.ref("gold", "audience_members")).where(F.col("run_id") == run.run_id)
    records = {
        r["audience"]: r
        for r in lake.read(lake.ref("ops", "audience_runs")).where(F.col("run_id") == run.run_id).collect()
    }
    built = [
        Built(
            audience,
            records[name]["version"],
            records[name]["rule"],
            members.where(F.col("audience") == name),
            [tuple(step) for step in json.loads(records[name]["funnel"])],
            int(records[name]["treatment"]),
            int(records[name]["holdout"]),
        )  # fmt: skip
        for name, audience in state.definitions.audiences.items()
    ]
    return run, built, state.definitions, Inputs(lake, state.inputs)


def export_run(lake: Lake, run_id: str, missing_only: bool = False) -> list[Export]:
    """Every audience of the run to each of its destinations (as of the date the run built them). Staging folders
    a killed export left are removed first (the lake lock makes this the only export running). `missing_only`:
    a folder already in place (with its manifest) is left as it is, whatever was added to it since (a
    destination's acknowledgement, an erasure's rewrite), and its manifest describes it."""
    clear_staging(Path(local_root(lake)))
    run, built, definitions, inputs = recorded_audiences(lake, run_id)
    out = []
    for b in built:
        for destination in b.audience.destinations:
            manifest = export_folder(lake, destination, b.audience.name, run_id) / MANIFEST
            if missing_only and manifest.exists():
                out.append(Export(destination, b.audience.name, manifest.parent, json.loads(manifest.read_text())))
            else:
                out.append(export_audience(lake, run, b, destination, definitions, inputs))
    return out


def export_activation(lake: Lake, run: Run) -> dict:
    """The `export` stage: every audience of the run's activation (`activated_run`) to each of its destinations.
    The activation of another run (the `audiences` stage kept its audiences) was exported by that run: only its
    folders that are missing are written."""
    run_id = activated_run(lake, run)
    exports = export_run(lake, run_id, missing_only=run_id != run.run_id)
    if run_id != run.run_id:
        log.info("run %s activates run %s's audiences: %d exports in place", run.run_id, run_id, len(exports))
    return {"exports": len(exports), "rows": sum(e.manifest["counts"]["exported"] for e in exports)}
