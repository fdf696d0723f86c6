"""Schema speed: inference on a big mixed DataFrame, conversion of request payloads.

- ``infer_schema`` on a 1,000,000 x 20 DataFrame (ints, floats, whole numbers with NaN,
  pandas Int64 with NA, str/object strings, categories, bools, datetimes with NaT).
  Goal < 0.2 s. Baseline: the straightforward per-column approach — look at every
  value's Python type (``dropna().map(type)``) and test whole numbers with
  ``map(float.is_integer)`` — measured in the same run.
- ``Schema.convert`` of a 10,000-row and a 100-row records payload (the Power BI style,
  as decoded from JSON) against ``pd.DataFrame.from_records`` on the same payload, which
  builds a frame but validates nothing and does not restore the sample's dtypes.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from nbdeploy.core.schema import infer_schema

from _common import Result, timeit

ROWS = 1_000_000


def build_frame(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """The 20-column mixed frame the benchmarks use."""
    rng = np.random.default_rng(seed)
    ints = rng.integers(0, 1000, rows)
    floats = rng.random(rows)
    whole_nan = ints.astype("float64")
    whole_nan[rng.random(rows) < 0.1] = np.nan
    words = np.array(["alpha", "beta", "gamma", "delta"], dtype=object)[rng.integers(0, 4, rows)]
    nullable_ints = pd.array(ints, dtype="Int64")
    nullable_ints[::5] = pd.NA
    stamps = pd.Series(pd.date_range("2020-01-01", periods=rows, freq="min"))
    stamps[::7] = pd.NaT
    return pd.DataFrame(
        {
            "int_a": ints,
            "int_b": ints.astype("int32"),
            "int_c": ints[::-1].copy(),
            "float_a": floats,
            "float_b": floats.astype("float32"),
            "float_c": floats[::-1].copy(),
            "whole_nan_a": whole_nan,
            "whole_nan_b": whole_nan[::-1].copy(),
            "whole_nan_c": whole_nan * 2,
            "Int64_na": nullable_ints,
            "Int64": pd.array(ints, dtype="Int64"),
            "str": pd.Series(words, dtype="str"),
            "object_str": pd.Series(words, dtype=object),
            "str_nan": pd.Series(words, dtype="str").where(rng.random(rows) > 0.1),
            "category": pd.Categorical(words),
            "category_nan": pd.Categorical(words).add_categories(["x"]),
            "bool": rng.random(rows) > 0.5,
            "boolean": pd.array(rng.random(rows) > 0.5, dtype="boolean"),
            "datetime_nat": stamps,
            "datetime_utc": pd.Series(
                pd.date_range("2020-01-01", periods=rows, freq="s", tz="UTC")
            ),
        }
    )


def naive_infer(frame: pd.DataFrame) -> dict[str, tuple[set[type], bool, bool]]:
    """The baseline: per-value Python type checks, column by column."""
    out: dict[str, tuple[set[type], bool, bool]] = {}
    for name in frame.columns:
        column = frame[name]
        nullable = bool(column.isna().any())
        present = column.dropna()
        kinds = set(present.map(type))
        whole = kinds <= {float} and bool(present.map(float.is_integer).all())
        out[str(name)] = (kinds, nullable, whole)
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    decoded: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return decoded


def run() -> list[Result]:
    frame = build_frame()
    schema = infer_schema(frame)
    fast = timeit(lambda: infer_schema(frame), repeat=5)
    naive = timeit(lambda: naive_infer(frame), repeat=1, warmup=0)
    results = [
        Result(
            "schema",
            f"infer_schema {ROWS:,} x {frame.shape[1]} mixed",
            fast,
            "s",
            baseline=naive,
            baseline_name="naive dropna().map(type)",
            goal="< 0.2 s",
        )
    ]
    for rows in (10_000, 100):
        payload = _records(frame.head(rows))
        converted = timeit(lambda p=payload: schema.convert(p), repeat=7)
        plain = timeit(lambda p=payload: pd.DataFrame.from_records(p), repeat=7)
        results.append(
            Result(
                "schema",
                f"convert {rows:,}-row records (validated, sample dtypes)",
                converted,
                "s",
                baseline=plain,
                baseline_name="DataFrame.from_records, no checks",
            )
        )
    return results
