"""Derived columns of a silver table: contract expressions, PII hashes (`<column>_hash`), and the user id."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiencelake.core.contracts import SESSION_COLUMNS, Contract, spark_type
from audiencelake.core.errors import ContractError
from audiencelake.core.pii import NORMALIZERS, salted_hash


def derive(df: DataFrame, c: Contract) -> DataFrame:
    """Add every derived column of `c` to `df` (which holds the contract's typed input columns, and the salt:
    `pii.with_salt`).

    A derived column has a SQL `expression`, or is named `<pii column>_hash` (salted SHA-256 of the normalised
    email or phone), or is `user_id`: the customer id in tables keyed by customer, null in visitor tables
    (`anonymous_id`); identity stitching then sets the person the identity map gives. The session columns of a
    table with `sessions` are null here: `ingest.sessions` sets them once the batch's rows for silver are known.

    Raises:
        ContractError: a derived column has none of these.
    """
    pii = {f"{col.name}_hash": col for col in c.pii_columns if col.pii in NORMALIZERS}
    for col in c.derived:
        if col.expression:
            value = F.expr(col.expression)
        elif col.name in pii:
            source = pii[col.name]
            value = salted_hash(NORMALIZERS[source.pii](F.col(source.name)))
        elif c.sessions and col.name in SESSION_COLUMNS:
            value = F.lit(None)
        elif col.name == "user_id":
            visitors = "anonymous_id" in {column.name for column in c.columns}
            value = F.lit(None) if visitors else F.col("customer_id")
        else:
            raise ContractError(f"contract '{c.table}': derived column '{col.name}' has no expression")
        df = df.withColumn(col.name, value.try_cast(spark_type(col.type)))  # overflow -> null, caught by the gate
    return df
