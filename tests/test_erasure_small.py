"""Erasure by user id (issue 10) on a copy of the small ingested world (silver and identity, no gold): the person
leaves every table and every data file but the suppression list, and a second request finds nobody. (Apart from
tests/test_erasure.py, whose copies are of the trained world: each module runs beside the world it copies.)"""

from __future__ import annotations

import json
import shutil

import pytest

from audiencelake.cli.main import main
from audiencelake.core.lake import RESTRICTED, Lake
from conftest import lake_settings
from test_activation_world import cli_sets
from test_erasure import holders

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def small_copy(world, spark, tmp_path_factory):
    """A copy of the small ingested world (silver, identity, no gold), VACUUM retention 0 h."""
    root = tmp_path_factory.mktemp("erasure-small")
    shutil.copytree(world["root"] / "lake", root / "lake")
    shutil.copytree(world["root"] / "landing", root / "landing")
    sets = cli_sets(root) + ["--set", "lake.vacuum_retention_hours=0"]
    return Lake(spark, lake_settings(root, "lake.vacuum_retention_hours=0")), root, sets


def test_forget_by_user_id_then_again_finds_nobody(small_copy, capsys) -> None:
    lake, root, sets = small_copy
    crm = lake.read(lake.ref("silver", "crm_profiles"))
    user = crm.where("user_id = customer_id AND email_hash IS NOT NULL").orderBy("customer_id").first()["user_id"]
    orders = lake.read(lake.ref("silver", "orders")).where(f"user_id = '{user}'").count()
    email = lake.read(lake.ref(RESTRICTED, "crm_profiles_pii")).where(f"customer_id = '{user}'").first()["email"]
    assert orders and email
    main(["forget", "--user-id", user, *sets])
    assert "erasure request" in capsys.readouterr().out
    for layer, name in (("silver", "orders"), ("silver", "crm_profiles"), ("silver", "clickstream_events"),
                        ("ops", "identity_map"), ("identity", "identity_persons")):  # fmt: skip
        assert not lake.read(lake.ref(layer, name)).where(f"user_id = '{user}'").count(), f"{layer}.{name}"
    # Parquet values print as Python literals: the quotes make the search find the id, not a longer one
    kept = holders(root / "lake", {"id": f"'{user}'"}).get("id", [])
    assert all(p.startswith("ops/suppression/") for p in kept if "_delta_log" not in p), kept
    [request] = lake.read(lake.ref("ops", "erasure_requests")).collect()
    assert json.loads(request["tables"])["silver.orders"] == orders and request["id_type"] == "user_id"

    # a second request for someone already erased finds nobody and changes no table but the request log
    versions = {n: lake.version(lake.ref(*n)) for n in lake.table_names() if lake.exists(lake.ref(*n))}
    main(["forget", "--email", email, *sets])
    assert "nobody found" in capsys.readouterr().out
    changed = {n for n, v in versions.items() if lake.version(lake.ref(*n)) != v}
    assert changed == {("ops", "erasure_requests")}


def test_landing_records_are_split_as_their_source_reads_them() -> None:
    """Erasure's landing scan splits a record as the source's reader does: a semicolon CSV (a quoted field holding
    the separator and a line break), whitespace text and fixed-width text; others' records stay byte for byte."""
    from audiencelake.erasure.files import csv_cells, scrub_text, text_cells
    from audiencelake.erasure.person import Person

    ann = Person(customers={"C7"}, emails={"ann@example.com"})
    semi = 'id;note;email\nC1;"a; b\nc";x@example.com\nC9;ok;Ann@Example.com\nC3;ok;y@example.com\n'
    kept, n = scrub_text(semi, "csv", ann, True, csv_cells(";"))
    assert (n, kept) == (1, 'id;note;email\nC1;"a; b\nc";x@example.com\nC3;ok;y@example.com\n')
    assert scrub_text(semi, "csv", ann, True)[1] == 0  # split by commas, the e-mail is not a cell of its own
    spaced = " C7 0001 19970101  2   29.33\r\n C1 0002 19970102  1   9.99\r\n"
    assert scrub_text(spaced, "text", ann, False, text_cells(r"\s+", None)) == (
        " C1 0002 19970102  1   9.99\r\n", 1)  # fmt: skip
    pasted = "id;email\nC7\u200b;z@example.com\nC1;y@example.com\n"  # the id as ingest normalised it is C7
    assert scrub_text(pasted, "csv", ann, True, csv_cells(";"))[1] == 1
    fixed = "C7  2026-01-0112\nC1  2026-01-02 7\n"
    assert scrub_text(fixed, "text", ann, False, text_cells(None, [4, 10, 2])) == ("C1  2026-01-02 7\n", 1)


def test_an_unreadable_landing_file_does_not_stop_erasure(tmp_path) -> None:
    """A truncated archive in landing is logged and left (nothing to rewrite); the lake's own copy of a file it
    could not ingest is deleted; a tab-separated file (`sep: '\\t'`, as Spark reads it) is split at tabs."""
    import gzip

    from audiencelake.erasure.files import csv_cells, scrub_landing, scrub_text
    from audiencelake.erasure.person import Person
    from audiencelake.ingest.reader import csv_separator

    ann = Person(customers={"C7"})
    broken = tmp_path / "t.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"customer_id": "C7"}\n' * 50)[:-20])
    assert scrub_landing(str(tmp_path / "*.gz"), "json", ann, False) == {} and broken.exists()
    assert scrub_landing(str(tmp_path / "*.gz"), "json", ann, False, drop_unreadable=True) == {}
    assert not broken.exists()
    tab = csv_cells(csv_separator({"sep": "\\t"}))  # as the source's options hold it
    assert scrub_text("id\tx\nC7\ta\nC1\tb\n", "csv", ann, True, tab) == ("id\tx\nC1\tb\n", 1)
