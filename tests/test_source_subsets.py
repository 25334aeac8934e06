"""Any subset of sources: a shop with an order log alone runs the whole pipeline, then adds its CRM export and runs
it again. Every stage that can run does; the others are skipped with one line naming the missing table and the
stage that writes it; the tags of missing sources are unavailable (null columns, the reason in gold.tag_catalog);
audiences that use an unavailable tag or score are skipped with the reason, the others are built."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from audiencelake.core.lake import Lake
from audiencelake.core.runs import Run
from audiencelake.report.html import report_path
from audiencelake.stages.declaration import StageContext
from audiencelake.stages.runner import MissingInput, run_pipeline, run_stage
from audiencelake.synth.world import DEFAULT_END
from audiencelake.tags.loader import load_catalogue
from conftest import lake_settings, small_models_config

SHOP = {"users": 200, "days": 120, "seed": 11}
OTHERS = ("clickstream", "campaign_touches", "social")  # landing folders of the sources this shop does not have


def _tables(lake: Lake, layer: str, table: str, as_of=DEFAULT_END):
    return lake.read(lake.ref(layer, table)).where(f"as_of = DATE'{as_of}'").toPandas()


def _outputs(lake: Lake, counts: dict, run_id: str) -> dict:
    silver = {t: lake.exists(lake.ref("silver", t)) for t in ("orders", "crm_profiles", "clickstream_events")}
    return {
        "counts": counts,
        "silver": silver,
        "catalog": _tables(lake, "gold", "tag_catalog").set_index("name"),
        "profile": _tables(lake, "gold", "user_profile"),
        "report": report_path(lake, run_id),
    }


@pytest.fixture(scope="module")
def shop(spark, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("shop")
    config = small_models_config(root / "models.yaml")
    lake = Lake(spark, lake_settings(root, f"models.config={config}"))
    run_pipeline(StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="shop-0"), dict(SHOP)), stop="synth")
    landing = Path(lake.settings.landing_root)
    for folder in OTHERS:
        shutil.rmtree(landing / folder)
    later = root / "later"
    shutil.move(landing / "crm", later / "crm")  # the CRM export comes later
    first = run_pipeline(StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="shop-1")), start="ingest")
    orders_only = _outputs(lake, first, "shop-1")
    shutil.move(later / "crm", landing / "crm")
    second = run_pipeline(StageContext(lake, Run.create(as_of=DEFAULT_END, run_id="shop-2")), start="ingest")
    first_order = lake.read(lake.ref("silver", "orders")).agg({"order_date": "min"}).first()[0]
    return {"orders_only": orders_only, "with_crm": _outputs(lake, second, "shop-2"), "lake": lake,
            "first_order": first_order}  # fmt: skip


def test_an_order_log_alone_gets_profiles_rfm_clv_segments_and_churn(shop) -> None:
    out = shop["orders_only"]
    counts = out["counts"]
    assert out["silver"] == {"orders": True, "crm_profiles": False, "clickstream_events": False}  # none made up
    for model in ("segmentation", "churn", "clv", "recommendations"):
        assert counts[f"train_{model}"]["promoted"] == 1, counts[f"train_{model}"]
        assert counts[f"score_{model}"]["rows"] > 0, counts[f"score_{model}"]
    assert counts["train_propensity"] == {"skipped": "silver.campaign_touches does not exist (written by stage ingest)"}
    assert counts["score_propensity"]["skipped"].startswith("model.propensity does not exist")
    skipped = counts["audiences"]["skipped"]  # consent comes from the CRM, and no channel is declared opt-out here
    assert skipped.startswith(f"no audience can be built as of {DEFAULT_END} (winback_high_value: consent to email is "
                              "recorded in silver.crm_profiles, which this lake lacks"), skipped  # fmt: skip
    assert counts["report"]["bytes"] > 0 and out["report"].exists()

    catalog, profile = out["catalog"], out["profile"]
    expected = {t.name for t in load_catalogue().tags if set(t.sources) - {"orders"}}  # over another source
    unavailable = set(catalog.index[catalog["unavailable"].notna()])
    assert expected <= unavailable and counts["profile"]["unavailable_tags"] == len(unavailable)
    assert catalog.loc["sessions_30d", "unavailable"] == "source clickstream: silver.clickstream_events does not exist"
    assert catalog.loc["age_band", "unavailable"] == "reads tag age: silver.crm_profiles does not exist"
    assert profile["sessions_30d"].isna().all() and profile["gender"].isna().all()  # the columns are there, empty
    assert catalog.loc["rfm_segment", "unavailable"] is None and profile["rfm_segment"].notna().mean() > 0.9
    assert profile["orders_365d"].notna().sum() == counts["profile"]["users"]


def test_adding_the_crm_makes_its_tags_and_the_audiences_that_can_be_built(shop) -> None:
    out = shop["with_crm"]
    counts, catalog = out["counts"], out["catalog"]
    assert out["silver"]["crm_profiles"] and not out["silver"]["clickstream_events"]
    assert catalog.loc["gender", "unavailable"] is None and out["profile"]["gender"].notna().any()
    assert catalog.loc["sessions_30d", "unavailable"] is not None
    assert counts["profile"]["unavailable_tags"] < shop["orders_only"]["counts"]["profile"]["unavailable_tags"]
    audiences = counts["audiences"]
    assert audiences["audiences"] >= 1 and audiences["treatment"] > 0, audiences  # winback: churn, CLV, is_buyer
    assert audiences["skipped"] >= 1  # those on clickstream tags (lifecycle) or propensity scores
    assert counts["export"]["exports"] > 0 and counts["export"]["rows"] > 0, counts["export"]


def test_models_on_a_history_shorter_than_their_windows_are_skipped_in_one_line(shop) -> None:
    """Run as of 20 days after the first order: churn's reference date (run date - label_days), CLV's holdout start
    and recommendations' validation window all come before any order. Each training is skipped saying why, instead
    of a Spark or NumPy error from empty data."""
    lake, first = shop["lake"], shop["first_order"]
    ctx = StageContext(lake, Run.create(as_of=first + timedelta(days=20), run_id="shop-early"))
    expected = {
        "train_churn": "churn: 0 training and 0 held-out customers",
        "train_clv": "clv: 0 customers with a purchase day before the holdout",
        "train_recommendations": "recommendations: no user with interactions both up to",
    }
    for stage, start in expected.items():
        with pytest.raises(MissingInput) as err:
            run_stage(stage, ctx)
        assert str(err.value).startswith(f"stage {stage}: {start}") and "\n" not in str(err.value), str(err.value)


def test_propensity_on_touches_with_one_outcome_is_skipped_in_one_line(spark, tmp_path, monkeypatch) -> None:
    """Campaign touches none of which converted (a first campaign, say): no model can learn from one outcome."""
    from audiencelake.core.errors import MissingData
    from audiencelake.models import propensity
    from audiencelake.models.config import load_models_config

    touches = spark.range(200).selectExpr("concat('U', id) AS user_id", "'c1' AS campaign_id", "0.0D AS label")
    monkeypatch.setattr(propensity, "training_rows", lambda lake, run, config: touches)
    lake = Lake(spark, lake_settings(tmp_path))
    with pytest.raises(MissingData, match=r"^propensity: \d+ training touches \(0 converted\) .* both outcomes$"):
        propensity.train(lake, Run.create(as_of=DEFAULT_END, run_id="p"), load_models_config().propensity)
