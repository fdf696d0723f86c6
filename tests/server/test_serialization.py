"""JSON encoding of run() results: numpy, pandas and friends."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from nbdeploy.core.schema import json_default
from nbdeploy.server.serialization import dumps


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(np.float32(0.5), 0.5, id="float32"),
        pytest.param(np.int8(-3), -3, id="int8"),
        pytest.param(np.bool_(True), True, id="numpy-bool"),
        pytest.param(float("nan"), None, id="nan"),
        pytest.param(float("inf"), None, id="infinity"),
        pytest.param(np.array([1.0, np.nan]), [1.0, None], id="array-with-nan"),
        pytest.param(np.arange(4).reshape(2, 2)[:, ::-1], [[1, 0], [3, 2]], id="non-contiguous"),
        pytest.param(np.array([1, "a"], dtype=object), [1, "a"], id="object-array"),
        pytest.param(
            np.array(["2024-01-02T03:04:05"], dtype="datetime64[s]"),
            ["2024-01-02T03:04:05"],
            id="datetime64-array",
        ),
        pytest.param(np.datetime64("2024-01-02T03:04:05"), "2024-01-02T03:04:05", id="datetime64"),
        pytest.param(pd.Timestamp("2024-01-02 03:04:05"), "2024-01-02T03:04:05", id="timestamp"),
        pytest.param(pd.NaT, None, id="nat"),
        pytest.param(pd.NA, None, id="pd-na"),
        pytest.param(pd.Timedelta(minutes=1), 60.0, id="timedelta"),
        pytest.param(dt.timedelta(seconds=1.5), 1.5, id="py-timedelta"),
        pytest.param(dt.date(2024, 1, 2), "2024-01-02", id="date"),
        pytest.param(decimal.Decimal("2.25"), 2.25, id="decimal"),
        pytest.param({3, 1, 2}, [1, 2, 3], id="set"),
        pytest.param(frozenset({"b"}), ["b"], id="frozenset"),
        pytest.param(pd.Series([1.5, None]), [1.5, None], id="series-nan"),
        pytest.param(pd.Series(["a", None], dtype="string"), ["a", None], id="string-series"),
        pytest.param(pd.Index([1, 2]), [1, 2], id="index"),
        pytest.param(pd.Categorical(["x", "y"]), ["x", "y"], id="categorical"),
        pytest.param(
            pd.DataFrame({"a": [1, 2], "b": ["x", None]}),
            [{"a": 1, "b": "x"}, {"a": 2, "b": None}],
            id="dataframe-records",
        ),
        pytest.param(
            pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}),
            [{"n": 1}, {"n": None}],
            id="nullable-int-frame",
        ),
        pytest.param(pd.DataFrame({0: [1], 1: [2]}), [{"0": 1, "1": 2}], id="int-columns"),
        pytest.param("already json", "already json", id="str-stays-a-string"),
    ],
)
def test_values_serialize(value: Any, expected: Any) -> None:
    assert orjson.loads(dumps(value)) == expected


def test_nested_values_serialize() -> None:
    result = {
        "frame": pd.DataFrame({"when": pd.to_datetime(pd.Series(["2024-01-01", None]))}),
        "scores": [np.float64(1.25), np.int64(2)],
    }
    assert orjson.loads(dumps(result)) == {
        "frame": [{"when": "2024-01-01T00:00:00"}, {"when": None}],
        "scores": [1.25, 2],
    }


def test_unserializable_value_names_its_type() -> None:
    class Opaque:
        pass

    with pytest.raises(TypeError, match="Opaque"):
        dumps({"x": Opaque()})
    with pytest.raises(TypeError, match="Opaque"):
        json_default(Opaque())


def test_mixed_unsortable_set_still_serializes() -> None:
    assert sorted(orjson.loads(dumps({1, "a"})), key=str) == [1, "a"]
