"""Turn the per-user aggregates into typed tags: defaults, `top` preferences, expressions over tags, quantile
scores against the population (cut points recorded) and rule segments, in dependency order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.contracts import spark_type
from audiencelake.errors import ConfigError
from audiencelake.tags.compile import part_name, run_params
from audiencelake.tags.definitions import Catalogue, Tag

ZERO_WHEN_ABSENT = {"count", "count_distinct", "sum"}  # a user without rows has 0 of these, not null
NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


@dataclass
class Evaluated:
    frame: DataFrame
    details: dict[str, dict] = field(default_factory=dict)  # per tag: e.g. the score cut points


class Evaluator:
    def __init__(self, catalogue: Catalogue, as_of: date) -> None:
        self.catalogue = catalogue
        self.params = run_params(catalogue, as_of)

    def sql(self, text: str) -> str:
        return self.catalogue.expr(text).bind(self.params)

    def column_sql(self, tag: Tag) -> str | None:
        """The tag's value as SQL over the aggregates and earlier tags (None: a score, computed separately)."""
        if tag.mechanism == "expression":
            text = self.sql(tag.expression)
        elif tag.mechanism == "segments":
            rules = " ".join(f"WHEN {self.sql(r.when)} THEN '{r.name}'" for r in tag.segments)
            text = f"CASE {rules} ELSE NULL END"
        elif tag.function == "top":
            text = self.top_sql(tag)
        elif tag.mechanism == "score":
            return None
        else:
            text = f"`{tag.name}`"
            if tag.default is None and tag.function in ZERO_WHEN_ABSENT:
                return f"coalesce({text}, 0)"
        if tag.default is not None:
            text = f"coalesce({text}, {_literal(tag.default)})"
        return text

    def top_sql(self, tag: Tag) -> str:
        structs = []
        for j, value in enumerate(tag.values):
            parts = [f"coalesce(`{part_name(tag.name, i, j)}`, 0D)" for i in range(len(tag.inputs))]
            structs.append(f"named_struct('n', -({' + '.join(parts)}), 'v', {_literal(value)})")
        ranked = f"transform(sort_array(filter(array({', '.join(structs)}), x -> x.n < 0)), x -> x.v)"
        k = tag.k or 1
        return f"try_element_at({ranked}, 1)" if k == 1 else f"slice({ranked}, 1, {k})"

    def score(self, frame: DataFrame, tag: Tag) -> tuple[DataFrame, dict]:
        """Bin `score.of` into `bins` quantiles of the population (`score.among`), 1 = lowest unless reversed."""
        s = tag.score
        population = frame.where(F.col(s.of).isNotNull())
        if s.among:
            population = population.where(F.expr(self.sql(s.among)))
        probs = [i / s.bins for i in range(1, s.bins)]
        row = population.agg(F.percentile_approx(F.col(s.of).cast("double"), probs).alias("cuts")).first()
        cuts = [float(c) for c in (row["cuts"] or [])]
        value = F.col(s.of).cast("double")
        above = [F.when(value > c if s.higher_is_better else value < c, 1).otherwise(0) for c in cuts]
        scored = F.lit(1) + sum(above, F.lit(0))
        eligible = F.col(s.of).isNotNull() & (F.expr(self.sql(s.among)) if s.among else F.lit(True))
        result = F.when(eligible & F.lit(bool(cuts)), scored)
        return frame.withColumn(tag.name, result), {"cut_points": cuts, "higher_is_better": s.higher_is_better}

    def evaluate(self, aggregates: DataFrame) -> Evaluated:
        """All tags as typed columns beside `user_id`, in the catalogue's file order.

        Raises:
            ConfigError: a tag's definition yields a value that cannot be its declared `type`.
        """
        frame, details = aggregates, {}
        for tag in self.catalogue.evaluation_order():
            if tag.mechanism == "score":
                frame, details[tag.name] = self.score(frame, tag)
            else:
                frame = frame.withColumn(tag.name, F.expr(self.column_sql(tag)))
            frame = frame.withColumn(tag.name, self.typed(frame, tag))
        names = ["user_id", *(t.name for t in self.catalogue.tags)]
        return Evaluated(frame.select(*names), details)

    def typed(self, frame: DataFrame, tag: Tag):
        have, want = frame.schema[tag.name].dataType, spark_type(tag.type)
        compatible = (
            have.simpleString() == want.simpleString()
            or isinstance(have, T.NullType)
            or (isinstance(have, NUMERIC) and isinstance(want, NUMERIC))
            or (isinstance(want, T.StringType) and not isinstance(have, T.ArrayType | T.MapType | T.StructType))
        )
        if not compatible:
            raise ConfigError(
                self.catalogue.file, f"tags.{tag.name}.type",
                f"declared {tag.type}, but the definition gives {have.simpleString()}",
            )  # fmt: skip
        return F.col(tag.name).cast(want)


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
