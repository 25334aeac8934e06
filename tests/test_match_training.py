"""The Splink model trains in the driver (DuckDB) on a stable sample of the CRM records and scores on Spark: the
sample is chosen by id whatever the partitioning, and the trained parameters land in Spark's settings by position."""

from __future__ import annotations

import pytest

from audiencelake.identity.config import load_identity_config
from audiencelake.identity.matching import splink_settings, training_sample, with_parameters


def test_the_training_sample_is_chosen_by_id_and_bounded(spark) -> None:
    matching = load_identity_config().matching
    small = matching.model_copy(update={"training": matching.training.model_copy(update={"max_records": 200})})
    records = spark.range(2000).selectExpr("concat('C', id) AS unique_id")
    first = {r["unique_id"] for r in training_sample(records, small).collect()}
    again = {r["unique_id"] for r in training_sample(records.repartition(7), small).collect()}
    assert first == again and 140 <= len(first) <= 260  # 200 expected; binomial sd 13
    assert training_sample(records, matching).count() == 2000  # under max_records: every record


def test_trained_parameters_land_in_the_spark_settings_by_position() -> None:
    settings = splink_settings(load_identity_config().matching)
    template, trained = settings.create_settings_dict("spark"), settings.create_settings_dict("duckdb")
    trained["probability_two_random_records_match"] = 0.0123
    for i, comparison in enumerate(trained["comparisons"]):
        for j, level in enumerate(comparison["comparison_levels"]):
            if not level.get("is_null_level"):
                level["m_probability"], level["u_probability"] = 0.5 / (j + 1), 0.01 * (i + 1)
    model = with_parameters(template, trained)
    assert model["probability_two_random_records_match"] == 0.0123 and "linker_uid" not in model
    for i, (ours, fitted) in enumerate(zip(model["comparisons"], trained["comparisons"], strict=True)):
        for j, (level, source) in enumerate(zip(ours["comparison_levels"], fitted["comparison_levels"], strict=True)):
            assert level["sql_condition"] == template["comparisons"][i]["comparison_levels"][j]["sql_condition"]
            assert level.get("m_probability") == source.get("m_probability")
            assert level.get("u_probability") == source.get("u_probability")
    dialects = {
        c["comparison_levels"][-2]["sql_condition"] for c in (model["comparisons"][1], trained["comparisons"][1])
    }
    assert len(dialects) == 2  # the email comparison's SQL differs by dialect; the model keeps Spark's
    trained["comparisons"].reverse()
    with pytest.raises(RuntimeError, match="does not match"):
        with_parameters(template, trained)
