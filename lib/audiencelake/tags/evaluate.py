"""Turn the per-user aggregates into typed tags: defaults, `top` preferences, expressions over tags, quantile
scores against the population (cut points recorded) and rule segments, in dependency order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from audiencelake.core.contracts import spark_type
from audiencelake.core.errors import ConfigError
from audiencelake.core.sql import sql_literal
from audiencelake.tags.compile import part_name, run_params
from audiencelake.tags.definitions import Catalogue, Tag, dependencies

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
            text = f"coalesce({text}, {sql_literal(tag.default)})"
        return text

    def top_sql(self, tag: Tag) -> str:
        structs = []
        for j, value in enumerate(tag.values):
            parts = [f"coalesce(`{part_name(tag.name, i, j)}`, 0D)" for i in range(len(tag.inputs))]
            structs.append(f"named_struct('n', -({' + '.join(parts)}), 'v', {sql_literal(value)})")
        ranked = f"transform(sort_array(filter(array({', '.join(structs)}), x -> x.n < 0)), x -> x.v)"
        k = tag.k or 1
        return f"try_element_at({ranked}, 1)" if k == 1 else f"slice({ranked}, 1, {k})"

    def cut_points(self, frame: DataFrame, tags: list[Tag]) -> dict[str, list[float]]:
        """The quantile cut points of each score tag's `score.of` among its population (`score.among`), all in one
        aggregation: `percentile_approx` skips nulls, so each tag's column is null outside its population."""
        aggs = []
        for i, tag in enumerate(tags):
            s = tag.score
            probs = [j / s.bins for j in range(1, s.bins)]
            value = F.when(self.population(tag), F.col(s.of).cast("double"))
            aggs.append(F.percentile_approx(value, probs).alias(f"c{i}"))
        row = frame.agg(*aggs).first()
        return {tag.name: [float(c) for c in (row[f"c{i}"] or [])] for i, tag in enumerate(tags)}

    def scored(self, tag: Tag, cuts: list[float]) -> Column:
        """`score.of` binned at `cuts` into `bins` quantiles of the population (`score.among`), 1 = lowest unless
        reversed; null outside the population or when it was empty."""
        s = tag.score
        value = F.col(s.of).cast("double")
        above = [F.when(value > c if s.higher_is_better else value < c, 1).otherwise(0) for c in cuts]
        return F.when(self.population(tag) & F.lit(bool(cuts)), F.lit(1) + sum(above, F.lit(0)))

    def population(self, tag: Tag) -> Column:
        """Whether a row is in a score tag's population: `score.of` is known and `score.among` holds."""
        s = tag.score
        return F.col(s.of).isNotNull() & (F.expr(self.sql(s.among)) if s.among else F.lit(True))

    def evaluate(self, aggregates: DataFrame) -> Evaluated:
        """All tags as typed columns beside `user_id`, in the catalogue's file order.

        Tags are evaluated in waves: every tag whose inputs are ready, then the cut points of every score whose
        inputs are ready in one aggregation (one Spark job per wave of scores, not one per score).

        Raises:
            ConfigError: a tag's definition yields a value that cannot be its declared `type`.
        """
        absent = {name: F.lit(None).cast(spark_type(kind)) for name, kind in self.catalogue.absent.items()}
        frame, details, done = aggregates.withColumns(absent) if absent else aggregates, {}, set(absent)
        pending = self.catalogue.evaluation_order()
        while pending:
            ready = [t for t in pending if dependencies(t, self.catalogue.parsed) <= done]
            if not ready:  # the loader orders the tags and refuses cycles
                raise AssertionError(f"tags {[t.name for t in pending]} wait on each other")
            plain = [t for t in ready if t.mechanism != "score"]
            scores = [] if plain else [t for t in ready if t.mechanism == "score"]
            if plain:  # one projection per wave: a plan analysed once, not twice per tag
                frame = frame.withColumns({t.name: F.expr(self.column_sql(t)) for t in plain})
            else:
                cuts = self.cut_points(frame, scores)
                for tag in scores:
                    details[tag.name] = {"cut_points": cuts[tag.name], "higher_is_better": tag.score.higher_is_better}
                frame = frame.withColumns({t.name: self.scored(t, cuts[t.name]) for t in scores})
            wave = plain or scores
            schema = frame.schema
            frame = frame.withColumns({t.name: self.typed(schema, t) for t in wave})
            done.update(t.name for t in wave)
            pending = [t for t in pending if t.name not in done]
        names = ["user_id", *(t.name for t in self.catalogue.tags)]
        return Evaluated(frame.select(*names), details)

    def typed(self, schema: T.StructType, tag: Tag) -> Column:
        """The tag's column cast to its declared type (`schema`: the frame's, holding the tag's column)."""
        have, want = schema[tag.name].dataType, spark_type(tag.type)
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
