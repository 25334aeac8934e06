"""Generate a world: landing files for five sources under `out/landing`, planted truth under `out/truth`.

Users are generated in chunks of `chunk_size`, each with its own random stream (`[seed, chunk]`), and written
before the next chunk starts, so memory does not grow with the number of users and the same seed gives the same
bytes (gzip headers carry no time stamp).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from audiencelake.core.errors import ConfigError
from audiencelake.synth.activity import (
    Campaign,
    campaign_touches,
    clickstream,
    expected_order_value,
    orders,
    social,
    traffic,
)
from audiencelake.synth.catalog import CAMPAIGN_CHANNELS, CATEGORIES, CITIES, SEGMENTS, Catalogue, make_catalogue
from audiencelake.synth.corrupt import EXPECTED_OUTCOME, BadRecordPlan, drop_field, dumps, plant, set_field
from audiencelake.synth.identities import plant_identities
from audiencelake.synth.people import Person, draw_people

DEFAULT_END = date(2026, 10, 31)
# Bumped whenever the generator's output for a given spec changes (2: planted price drops; 3: expected order
# values in truth, purchase rates doubled; 4: a zero-effect campaign, caused orders in truth; 5: CRM duplicates,
# family devices and test accounts, truth/persons.csv; 6: one to three kinds of noise per duplicate), so that a
# folder holding an older world is not mistaken for the world a spec asks for.
GENERATOR_VERSION = 6
SHANGHAI = timezone(timedelta(hours=8))
ORDER_COLUMNS = ["order_no", "line", "type", "customer", "created_at", "sku", "category", "qty", "price", "discount",
                 "channel"]  # fmt: skip
CRM_COLUMNS = ["customer_id", "first_name", "last_name", "email", "phone", "birth_date", "gender", "city",
               "signup_date", "consent_email", "consent_sms", "consent_push", "consent_ads", "updated_at"]  # fmt: skip
FOLDERS = {"clickstream": "clickstream", "orders": "orders", "crm_profiles": "crm", "campaign_touches":
           "campaign_touches", "social": "social"}  # fmt: skip


MIN_DAYS = 14


@dataclass(frozen=True)
class WorldSpec:
    users: int = 2000
    days: int = 120
    seed: int = 42
    end_date: date = DEFAULT_END
    chunk_size: int = 5000
    visitor_share: float = 0.2

    def __post_init__(self) -> None:
        # churners stop between 55% of the period and 5 days before its end, and campaigns need a week of history:
        # shorter periods have no room for them
        if self.days < MIN_DAYS:
            raise ConfigError("synth", "days", f"{self.days}: a world needs at least {MIN_DAYS} days")
        if self.users < 1 or self.chunk_size < 1:
            raise ConfigError("synth", "users" if self.users < 1 else "chunk_size", "must be at least 1")

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)

    def as_dict(self) -> dict:
        """The spec as recorded in truth/manifest.json (with the generator version)."""
        return {**asdict(self), "end_date": self.end_date.isoformat(), "generator": GENERATOR_VERSION}


def recorded_spec(out: Path | str) -> dict | None:
    """The spec of the world already generated under `out`, or None."""
    manifest = Path(out) / "truth" / "manifest.json"
    return json.loads(manifest.read_text())["spec"] if manifest.exists() else None


@dataclass
class WorldSummary:
    spec: dict
    valid_rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bad_records: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    files: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _iso(t: datetime, zulu: bool = False) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}" + ("Z" if zulu else "+00:00")


def _csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def _render_order(r: dict) -> str:
    return _csv_line([r[c] for c in ORDER_COLUMNS])


def _render_crm(r: dict) -> str:
    return _csv_line([str(r[c]).lower() if isinstance(r[c], bool) else r[c] for c in CRM_COLUMNS])


PLANS = {
    "clickstream": BadRecordPlan(
        {"malformed": 0.001, "missing_required": 0.001, "wrong_type": 0.001, "exact_duplicate": 0.003},
        {"missing_required": drop_field("anon_id", "event_id"),
         "wrong_type": set_field("ts", "yesterday at 10", "event_id")},
    ),
    "orders": BadRecordPlan(
        {"malformed": 0.002, "missing_required": 0.002, "wrong_type": 0.002, "impossible_value": 0.002,
         "exact_duplicate": 0.003},
        {"malformed": lambda r, rng: _render_order(r) + ",EXTRA,FIELDS",
         "missing_required": set_field("customer", "", "order_no"),
         "wrong_type": set_field("price", "12.x9", "order_no"),
         "impossible_value": set_field("price", lambda r: -abs(float(r["price"])), "order_no")},
    ),
    "campaign_touches": BadRecordPlan(
        {"malformed": 0.001, "missing_required": 0.001, "exact_duplicate": 0.002},
        {"missing_required": drop_field("campaign_id", "touch_id")},
    ),
    "social": BadRecordPlan(
        {"malformed": 0.002, "missing_required": 0.002, "wrong_type": 0.002},
        {"missing_required": drop_field("customer_id", "interaction_id"),
         "wrong_type": set_field("interaction_ts", "2026-02-30 25:00", "interaction_id")},
    ),
}  # fmt: skip


class _Files:
    """Lines per landing file for one chunk; flushed to disk at the end of the chunk."""

    def __init__(self, root: Path, chunk: int, start: date) -> None:
        self.root, self.chunk, self.start = root, chunk, start
        self.lines: dict[tuple[str, int], list[str]] = defaultdict(list)

    def add(self, source: str, day: int, line: str) -> None:
        self.lines[(source, day // 7)].append(line)

    def flush(self, summary: WorldSummary) -> None:
        for (source, week), lines in sorted(self.lines.items()):
            week_start = (self.start + timedelta(days=7 * week)).isoformat()
            folder = self.root / FOLDERS[source]
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{source}_{week_start}_part{self.chunk:04d}"
            if source == "clickstream":
                with (
                    open(folder / f"{stem}.jsonl.gz", "wb") as raw,
                    gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
                ):
                    gz.write(("\n".join(lines) + "\n").encode())
            elif source in ("orders", "crm_profiles"):
                header = _csv_line(ORDER_COLUMNS if source == "orders" else CRM_COLUMNS)
                (folder / f"{stem}.csv").write_text(header + "\n" + "\n".join(lines) + "\n")
            else:
                (folder / f"{stem}.jsonl").write_text("\n".join(lines) + "\n")
            summary.files[source] += 1
        self.lines.clear()


class _Truth:
    """Planted truth, appended chunk by chunk as CSV under truth/."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.started: set[str] = set()

    def write(self, name: str, rows: list[dict]) -> None:
        if not rows:
            return
        path = self.folder / f"{name}.csv"
        with open(path, "a" if name in self.started else "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            if name not in self.started:
                writer.writeheader()
                self.started.add(name)
            writer.writerows(rows)


def _campaigns(spec: WorldSpec) -> list[Campaign]:
    rng = np.random.default_rng([spec.seed, 2])
    count = max(4, spec.days // 15)
    days = np.linspace(7, spec.days - 10, count).astype(int)
    # the second campaign is planted with no effect at all: measurement must not find one
    return [
        Campaign(
            f"CMP{k:03d}", int(d), CAMPAIGN_CHANNELS[int(rng.integers(len(CAMPAIGN_CHANNELS)))], effect=float(k != 1)
        )
        for k, d in enumerate(days)
    ]


def _truth_user(p: Person, spec: WorldSpec, catalogue: Catalogue) -> dict:
    row = {
        "customer_id": p.customer_id, "segment": SEGMENTS[p.segment].name, "churner": p.churner,
        "last_active_date": (spec.start_date + timedelta(days=p.last_day)).isoformat(),
        "first_active_date": (spec.start_date + timedelta(days=p.first_day)).isoformat(),
        "purchase_rate": round(p.purchase_rate, 5), "session_rate": round(p.session_rate, 5),
        "discount_affinity": round(p.discount_affinity, 4), "campaign_effect": round(p.campaign_effect, 4),
        "preferred_hour": p.preferred_hour, "social_linked": p.social_linked,
        "expected_order_value": round(expected_order_value(p, catalogue), 2),
        "email": p.crm_versions[-1]["email"], "phone": p.crm_versions[-1]["phone"],
        "first_name": p.crm_versions[-1]["first_name"], "last_name": p.crm_versions[-1]["last_name"],
        "city": p.crm_versions[-1]["city"], "consent_email": p.crm_versions[-1]["consent_email"],
    }  # fmt: skip
    row.update({f"affinity_{c}": round(float(a), 4) for c, a in zip(CATEGORIES, p.affinity, strict=True)})
    return row


def _crm_rows(rng: np.random.Generator, people: list[Person], tally: dict[str, int]) -> list[tuple[int, str]]:
    """CRM export lines (day, line): every version of every customer, plus planted bad rows."""
    out = []
    for p in people:
        for v in p.crm_versions:
            out.append((v["_day"], _render_crm({**v, "updated_at": _iso(v["updated_at"])})))
        v0 = p.crm_versions[0]
        if len(p.crm_versions) > 1 and rng.random() < 0.10:  # same version time, different content
            other = next(c for c, _ in CITIES if c != v0["city"])
            out.append((v0["_day"], _render_crm({**v0, "city": other, "updated_at": _iso(v0["updated_at"])})))
            tally["conflict"] = tally.get("conflict", 0) + 2
        if rng.random() < 0.01:  # a later version with a birth date in the future
            bad = {**p.crm_versions[-1], "birth_date": "2099-01-01"}
            bad["updated_at"] = _iso(bad["updated_at"] + timedelta(seconds=1))
            out.append((bad["_day"], _render_crm(bad)))
            tally["impossible_value"] = tally.get("impossible_value", 0) + 1
        if rng.random() < 0.005:
            out.append((v0["_day"], _render_crm({**v0, "customer_id": "", "updated_at": _iso(v0["updated_at"])})))
            tally["missing_required"] = tally.get("missing_required", 0) + 1
    return out


def _format(source: str, r: dict) -> dict:
    """Give a record the text forms its source system writes (times, ids)."""
    if source == "clickstream":
        return {"event_id": r["event_id"], "ts": _iso(r["ts"], zulu=True),
                **{k: v for k, v in r.items() if k not in ("event_id", "ts")}}  # fmt: skip
    if source == "orders":
        local = r["created_at"].replace(tzinfo=UTC).astimezone(SHANGHAI)
        return {**r, "created_at": local.strftime("%Y-%m-%d %H:%M:%S")}
    key = "touch_ts" if source == "campaign_touches" else "interaction_ts"
    return {**r, key: _iso(r[key])}


def _write_chunk(
    spec: WorldSpec, chunk: int, people: list[Person], files: _Files, truth: _Truth, summary: WorldSummary
) -> None:
    rng = np.random.default_rng([spec.seed, 3, chunk])
    catalogue = make_catalogue(spec.seed)
    campaigns = _campaigns(spec)
    per_source: dict[str, list[dict]] = defaultdict(list)
    assignments = []
    sources = np.random.default_rng([spec.seed, 5, chunk])  # where visits come from: its own stream
    visits = []
    for p in people:
        events = clickstream(rng, p, catalogue, spec.start_date)
        traffic(sources, events)
        for k, e in enumerate(sorted(events, key=lambda e: e["ts"])):
            e["event_id"] = f"E{p.index:07d}-{k:05d}"
            per_source["clickstream"].append(e)
            if e.get("_visit"):
                visits.append({"event_id": e["event_id"], "customer_id": p.customer_id or "", "channel": e["_channel"]})
        touches, assigned, extra_days = campaign_touches(rng, p, campaigns, spec.start_date, spec.days)
        per_source["campaign_touches"] += touches
        assignments += assigned
        per_source["orders"] += orders(rng, p, catalogue, spec.start_date, spec.days, extra_days)
        per_source["social"] += social(rng, p, spec.start_date)
    last_week = (spec.days - 1) // 7
    for source, records in per_source.items():
        formatted = [_format(source, r) for r in records]
        render = _render_order if source == "orders" else dumps
        tally = summary.bad_records[source]
        late = set()
        if source == "clickstream":
            n_late = int(rng.binomial(len(formatted), 0.005))
            candidates = [i for i, r in enumerate(formatted) if r["_day"] // 7 < last_week]
            late = set(rng.choice(candidates, size=min(n_late, len(candidates)), replace=False).tolist())
            tally["late_arriving"] = tally.get("late_arriving", 0) + len(late)
        for i, r in enumerate(formatted):
            files.add(source, r["_day"] + (7 if i in late else 0), render(r))
        for template, line in plant(rng, formatted, PLANS[source], render, tally):
            files.add(source, template["_day"], line)
        summary.valid_rows[source] += len(formatted)
    customers = [p for p in people if p.customer_id]
    for day, line in _crm_rows(rng, customers, summary.bad_records["crm_profiles"]):
        files.add("crm_profiles", day, line)
    plants = plant_identities(np.random.default_rng([spec.seed, 4, chunk]), customers, chunk, spec.start_date,
                              spec.days)  # fmt: skip
    for r in plants.crm:
        files.add("crm_profiles", r["_day"], _render_crm({**r, "updated_at": _iso(r["updated_at"])}))
    for r in plants.events:
        files.add("clickstream", r["_day"], dumps(_format("clickstream", r)))
    summary.valid_rows["clickstream"] += len(plants.events)
    summary.valid_rows["crm_profiles"] += len(customers) + len(plants.crm)
    summary.valid_rows["crm_versions"] += sum(len(p.crm_versions) for p in customers) + len(plants.crm)
    truth.write("persons", plants.persons)
    truth.write("users", [_truth_user(p, spec, catalogue) for p in customers])
    truth.write("identities", [
        {"anonymous_id": a, "device_id": d.device_id, "platform": d.platform, "customer_id": p.customer_id or ""}
        for p in people for d in p.devices for a in d.anonymous_ids
    ] + plants.shared_anonymous)  # fmt: skip
    truth.write("campaign_assignments", assignments)
    truth.write("visits", visits)  # the channel planted on each visit's first event
    caused = {(r["customer"], r["_caused_by"], r["order_no"]) for r in per_source["orders"] if r.get("_caused_by")}
    truth.write("caused_orders", [{"customer_id": c, "campaign_id": k, "order_id": o} for c, k, o in sorted(caused)])


def generate_world(out: Path | str, spec: WorldSpec) -> WorldSummary:
    """Write landing files and planted truth for `spec` under `out` and return what was written.

    Args:
        out: folder to write `landing/` and `truth/` into (existing files of the same names are replaced).
        spec: size, period and seed of the world.
    """
    out = Path(out)
    summary = WorldSummary(spec=spec.as_dict())
    truth = _Truth(out / "truth")
    visitors = int(spec.users * spec.visitor_share)
    for chunk, start in enumerate(range(0, spec.users + visitors, spec.chunk_size)):
        count = min(spec.chunk_size, spec.users + visitors - start)
        rng = np.random.default_rng([spec.seed, 1, chunk])
        n_customers = max(0, min(count, spec.users - start))
        people = draw_people(rng, start, n_customers, spec.days, spec.start_date, customers=True)
        people += draw_people(rng, start + n_customers, count - n_customers, spec.days, spec.start_date, False)
        files = _Files(out / "landing", chunk, spec.start_date)
        _write_chunk(spec, chunk, people, files, truth, summary)
        files.flush(summary)
    truth.write("campaigns", [asdict(c) | {"date": (spec.start_date + timedelta(days=c.day)).isoformat()}
                              for c in _campaigns(spec)])  # fmt: skip
    manifest = {
        "spec": summary.spec,
        "valid_rows": dict(summary.valid_rows),
        "bad_records": {k: dict(sorted(v.items())) for k, v in sorted(summary.bad_records.items())},
        "expected_outcome": EXPECTED_OUTCOME,
        "files": dict(summary.files),
        "segments": [s.name for s in SEGMENTS],
    }
    (out / "truth" / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return summary
