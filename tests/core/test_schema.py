"""Schema inference, dict round trip, JSON Schema output and request conversion."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbdeploy.core.schema import Field, FieldType, Schema, infer_schema
from nbdeploy.exceptions import InvalidArgumentError, SchemaMismatchError

NAN = float("nan")


@pytest.mark.parametrize(
    ("column", "field_type", "nullable", "dtype"),
    [
        pytest.param(pd.Series([1, 2, 3]), "integer", False, "int64", id="int"),
        pytest.param(pd.Series([1, 2], dtype="uint8"), "integer", False, "uint8", id="uint8"),
        pytest.param(pd.Series([1.5, 2.0]), "number", False, "float64", id="float"),
        pytest.param(pd.Series([1.0, 2.0]), "number", False, "float64", id="whole-float-no-nan"),
        pytest.param(pd.Series([1.0, NAN, 3.0]), "integer", True, "float64", id="nullable-int"),
        pytest.param(pd.Series([1.5, NAN]), "number", True, "float64", id="float-with-nan"),
        pytest.param(pd.Series([NAN, NAN]), "number", True, "float64", id="all-nan"),
        pytest.param(pd.Series([1.0, np.inf, NAN]), "number", True, "float64", id="inf-not-int"),
        pytest.param(
            pd.Series([1.0, NAN], dtype="float32"), "integer", True, "float32", id="f32-int-nan"
        ),
        pytest.param(
            pd.Series([1, None], dtype="Int64"), "integer", True, "Int64", id="pandas-Int64-na"
        ),
        pytest.param(pd.Series([1, 2], dtype="Int64"), "integer", False, "Int64", id="Int64"),
        pytest.param(pd.Series([True, False]), "boolean", False, "bool", id="bool"),
        pytest.param(
            pd.Series([True, None], dtype="boolean"), "boolean", True, "boolean", id="boolean-na"
        ),
        pytest.param(pd.Series(["a", "b"], dtype=object), "string", False, "object", id="obj-str"),
        pytest.param(
            pd.Series(["a", None], dtype=object), "string", True, "object", id="obj-str-none"
        ),
        pytest.param(pd.Series(["a", None], dtype="str"), "string", True, None, id="pandas3-str"),
        pytest.param(
            pd.Series(["a", None], dtype="string"), "string", True, "string", id="string-dtype"
        ),
        pytest.param(
            pd.Series(pd.to_datetime(["2024-01-02", None])),
            "datetime",
            True,
            None,
            id="datetime-nat",
        ),
        pytest.param(
            pd.Series(pd.to_datetime(["2024-01-02"]).tz_localize("UTC")),
            "datetime",
            False,
            None,
            id="datetime-tz",
        ),
        pytest.param(
            pd.Series([1, None, 3], dtype=object), "integer", True, "object", id="obj-int-none"
        ),
        pytest.param(pd.Series([1, "a"], dtype=object), "any", False, "object", id="obj-mixed"),
        pytest.param(pd.Series([None, None], dtype=object), "any", True, "object", id="obj-empty"),
        pytest.param(
            pd.Series([dt.date(2024, 1, 1)], dtype=object), "datetime", False, "object", id="date"
        ),
    ],
)
def test_column_inference(
    column: pd.Series[Any], field_type: str, nullable: bool, dtype: str | None
):
    # dtype None: as this pandas names it ("str" and "datetime64[us]" in pandas 3,
    # "object" and "datetime64[ns]" in pandas 2).
    dtype = str(column.dtype) if dtype is None else dtype
    field = infer_schema(pd.DataFrame({"c": column})).fields[0]
    assert (field.type.value, field.nullable, field.dtype) == (field_type, nullable, dtype)
    assert field.name == "c"


@pytest.mark.parametrize(
    ("column", "levels", "nullable"),
    [
        pytest.param(pd.Categorical(["b", "a", "b"]), ("a", "b"), False, id="category"),
        pytest.param(pd.Categorical(["b", None]), ("b",), True, id="category-nan"),
        pytest.param(
            pd.Categorical(["x"], categories=["x", "y", "z"]), ("x", "y", "z"), False, id="unused"
        ),
        pytest.param(pd.Categorical([np.int64(3), np.int64(1)]), (1, 3), False, id="int-levels"),
    ],
)
def test_category_inference(column: Any, levels: tuple[Any, ...], nullable: bool):
    field = infer_schema(pd.DataFrame({"c": column})).fields[0]
    assert field.type is FieldType.CATEGORY
    assert field.categories == levels
    assert field.nullable is nullable
    assert all(type(v) in (str, int) for v in field.categories)  # JSON-able, not numpy


def test_non_string_column_labels_become_strings():
    schema = infer_schema(pd.DataFrame({0: [1], 1: ["a"]}))
    assert schema.names == ["0", "1"]


def test_dataframe_example_is_json_able_and_small():
    frame = pd.DataFrame(
        {
            "n": [1.0, NAN, 3.0, 4.0],
            "f": np.array([0.5, 1.5, 2.5, 3.5], dtype="float32"),
            "i": np.array([1, 2, 3, 4], dtype="int32"),
            "when": pd.to_datetime(
                ["2024-01-02T03:04:05", None, "2024-01-03T00:00:00", "2024-01-04T00:00:00"]
            ),
            "c": pd.Categorical(["a", "b", None, "a"]),
            "s": pd.array(["x", None, "z", "w"], dtype="string"),
        }
    )
    example = infer_schema(frame, example_rows=2).example
    assert example == [
        {"n": 1, "f": 0.5, "i": 1, "when": "2024-01-02T03:04:05", "c": "a", "s": "x"},
        {"n": None, "f": 1.5, "i": 2, "when": None, "c": "b", "s": None},
    ]
    assert type(example[0]["i"]) is int
    assert type(example[0]["n"]) is int  # a whole-number column with NaN is an integer column
    assert json.loads(json.dumps(example, allow_nan=False)) == example


def test_series_inference():
    schema = infer_schema(pd.Series([1.0, NAN, 2.0], name="y"))
    assert schema.kind == "series"
    assert schema.fields == (Field("y", FieldType.INTEGER, nullable=True, dtype="float64"),)
    assert schema.example == [1, None, 2]


@pytest.mark.parametrize(
    ("array", "dtype", "shape", "example"),
    [
        pytest.param(np.zeros((5, 3)), "float64", (None, 3), [[0.0] * 3] * 3, id="2d-float"),
        pytest.param(np.arange(4, dtype="int32"), "int32", (None,), [0, 1, 2], id="1d-int"),
        pytest.param(
            np.ones((2, 2, 2), dtype=bool), "bool", (None, 2, 2), [[[True] * 2] * 2] * 2, id="3d"
        ),
        pytest.param(np.array(["ab", "c"]), "str", (None,), ["ab", "c"], id="unicode"),
        pytest.param(np.array(2.5), "float64", (), 2.5, id="0d"),
        pytest.param(
            np.array(["2024-01-01"], dtype="datetime64[s]"),
            "datetime64[s]",
            (None,),
            ["2024-01-01T00:00:00"],
            id="datetime64",
        ),
    ],
)
def test_ndarray_inference(
    array: np.ndarray[Any, Any], dtype: str, shape: tuple[int | None, ...], example: Any
):
    schema = infer_schema(array)
    assert (schema.kind, schema.dtype, schema.shape) == ("ndarray", dtype, shape)
    assert schema.example == example


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        pytest.param("x", {"type": "string"}, id="str"),
        pytest.param(3, {"type": "integer"}, id="int"),
        pytest.param(2.5, {"type": "number"}, id="float"),
        pytest.param(True, {"type": "boolean"}, id="bool"),
        pytest.param(None, {}, id="none-is-any"),
        pytest.param([None], {"type": "array", "items": {}}, id="list-of-none"),
        pytest.param(np.float32(1.5), {"type": "number"}, id="numpy-scalar"),
        pytest.param([1, 2.5], {"type": "array", "items": {"type": "number"}}, id="int-float"),
        pytest.param(
            [1, None], {"type": "array", "items": {"type": ["integer", "null"]}}, id="nullable"
        ),
        pytest.param([1, "a"], {"type": "array", "items": {}}, id="mixed"),
        pytest.param([], {"type": "array", "items": {}}, id="empty-list"),
        pytest.param((1, 2), {"type": "array", "items": {"type": "integer"}}, id="tuple-is-array"),
        pytest.param(
            {"a": 1, "b": ["x"]},
            {
                "type": "object",
                "properties": {
                    "a": {"type": "integer"},
                    "b": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["a", "b"],
            },
            id="dict",
        ),
        pytest.param(
            [{"a": 1, "b": "x"}, {"a": None, "c": True}],
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "a": {"type": ["integer", "null"]},
                        "b": {"type": "string"},
                        "c": {"type": "boolean"},
                    },
                    "required": ["a"],
                },
            },
            id="records-merge",
        ),
    ],
)
def test_python_inference(sample: Any, expected: dict[str, Any]):
    schema = infer_schema(sample)
    assert schema.kind == "python"
    assert schema.json == expected


def test_python_example_keeps_first_rows():
    assert infer_schema(list(range(10)), example_rows=2).example == [0, 1]
    assert infer_schema({"t": dt.datetime(2024, 1, 2)}).example == {"t": "2024-01-02T00:00:00"}


def test_unsupported_sample_names_the_type():
    with pytest.raises(InvalidArgumentError, match="set"):
        infer_schema({1, 2})


def _mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 27],
            "income": [52000.5, NAN, 61000.0],
            "children": [1.0, NAN, 2.0],
            "score": pd.array([7, None, 9], dtype="Int64"),
            "member": [True, False, True],
            "name": ["ann", "bob", None],
            "joined": pd.to_datetime(["2020-01-01T10:00:00", None, "2021-06-30T00:00:00"]),
            "plan": pd.Categorical(["gold", "basic", "gold"], categories=["basic", "gold"]),
        }
    )


ROUND_TRIP_SCHEMAS = [
    pytest.param(infer_schema(_mixed_frame()), id="dataframe"),
    pytest.param(infer_schema(pd.Series(["a", None], name="s")), id="series"),
    pytest.param(infer_schema(np.zeros((4, 2, 3), dtype="float32")), id="ndarray"),
    pytest.param(infer_schema([{"a": 1, "b": [1.5]}, {"a": None}]), id="python"),
    pytest.param(
        Schema("dataframe", (Field("c", "category", categories=[1, 2]),)), id="hand-written"
    ),
]


@pytest.mark.parametrize("schema", ROUND_TRIP_SCHEMAS)
def test_schema_round_trips_through_dict_and_json(schema: Schema):
    data = schema.to_dict()
    assert Schema.from_dict(data) == schema
    through_json = json.loads(json.dumps(data, allow_nan=False))
    assert through_json == data
    assert Schema.from_dict(through_json) == schema
    assert Schema.from_dict(through_json).to_dict() == data


def test_field_round_trip_keeps_categories_and_dtype():
    field = Field(
        "plan", FieldType.CATEGORY, nullable=True, categories=("a", "b"), dtype="category"
    )
    data = field.to_dict()
    assert data == {
        "name": "plan",
        "type": "category",
        "nullable": True,
        "categories": ["a", "b"],
        "dtype": "category",
    }
    assert Field.from_dict(data) == field


def test_ndarray_shape_round_trips_as_tuple():
    schema = Schema.from_dict(infer_schema(np.zeros((2, 5))).to_dict())
    assert schema.shape == (None, 5)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(lambda: Field("x", "text"), "unknown field type", id="bad-type"),
        pytest.param(lambda: Field("x", "category"), "levels", id="category-without-levels"),
        pytest.param(lambda: Field("x", "integer", categories=(1,)), "cannot", id="levels-on-int"),
        pytest.param(lambda: Schema("table"), "unknown schema kind", id="bad-kind"),
        pytest.param(lambda: Schema("ndarray"), "dtype", id="ndarray-without-dtype"),
        pytest.param(lambda: Schema("series"), "exactly one", id="series-without-field"),
        pytest.param(
            lambda: Schema("dataframe", (Field("a", "integer"), Field("a", "number"))),
            "duplicate",
            id="duplicate-names",
        ),
        pytest.param(lambda: Field.from_dict({"type": "integer"}), "name", id="dict-no-name"),
        pytest.param(lambda: Schema.from_dict({"fields": []}), "kind", id="dict-no-kind"),
    ],
)
def test_invalid_value_objects_are_refused(make: Any, match: str):
    with pytest.raises(InvalidArgumentError, match=match):
        make()


def test_schema_is_frozen_and_hashable_without_its_example():
    schema = infer_schema(pd.DataFrame({"a": [1]}))
    with pytest.raises(AttributeError):
        schema.kind = "python"  # type: ignore[misc]
    assert hash(schema) == hash(Schema.from_dict(schema.to_dict()))


def test_dataframe_json_schema_2020_12():
    assert infer_schema(_mixed_frame()).to_json_schema() == {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "properties": {
                "age": {"type": "integer", "format": "int64"},
                "income": {"type": ["number", "null"], "format": "double"},
                "children": {"type": ["integer", "null"], "format": "int64"},
                "score": {"type": ["integer", "null"], "format": "int64"},
                "member": {"type": "boolean"},
                "name": {"type": ["string", "null"]},
                "joined": {"type": ["string", "null"], "format": "date-time"},
                "plan": {"type": "string", "enum": ["basic", "gold"]},
            },
            "required": ["age", "income", "children", "score", "member", "name", "joined", "plan"],
            "additionalProperties": False,
        },
    }


def test_dataframe_json_schema_swagger2_uses_x_nullable():
    frame = pd.DataFrame({"n": [1.0, NAN], "c": pd.Categorical(["a", None])})
    properties = infer_schema(frame).to_json_schema("swagger2")["items"]["properties"]
    assert properties == {
        "n": {"type": "integer", "format": "int64", "x-nullable": True},
        "c": {"type": "string", "enum": ["a"], "x-nullable": True},
    }


def test_nullable_category_in_2020_12_allows_null_in_enum():
    field = Field("c", FieldType.CATEGORY, nullable=True, categories=("a", "b"))
    assert field.to_json_schema() == {"type": ["string", "null"], "enum": ["a", "b", None]}


def test_ndarray_json_schema_pins_inner_dimensions():
    assert infer_schema(np.zeros((3, 2), dtype="int64")).to_json_schema() == {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "array",
            "items": {"type": "integer", "format": "int64"},
            "minItems": 2,
            "maxItems": 2,
        },
    }


def test_python_json_schema_swagger2_has_no_null_type():
    schema = infer_schema({"a": None, "b": [1, None], "c": []})
    swagger = schema.to_json_schema("swagger2")
    assert swagger["properties"] == {
        "a": {},
        "b": {"type": "array", "items": {"type": "integer", "x-nullable": True}},
        "c": {"type": "array", "items": {}},
    }
    assert '"null"' not in json.dumps(swagger)


def test_unknown_dialect_is_refused():
    with pytest.raises(InvalidArgumentError, match="dialect"):
        infer_schema([1]).to_json_schema("draft-04")  # type: ignore[arg-type]


MIXED = infer_schema(_mixed_frame())
ROW0 = {
    "age": 31,
    "income": 52000.5,
    "children": 1,
    "score": 7,
    "member": True,
    "name": "ann",
    "joined": "2020-01-01T10:00:00",
    "plan": "gold",
}
ROW1 = {
    "age": 45,
    "income": None,
    "children": None,
    "score": None,
    "member": False,
    "name": None,
    "joined": None,
    "plan": "basic",
}
COLUMNS = list(ROW0)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([ROW0, ROW1], id="records"),
        pytest.param([list(ROW0.values()), list(ROW1.values())], id="rows"),
        pytest.param(
            {"columns": COLUMNS, "data": [list(ROW0.values()), list(ROW1.values())]}, id="split"
        ),
        pytest.param(
            {
                "columns": COLUMNS[::-1],
                "data": [list(ROW0.values())[::-1], list(ROW1.values())[::-1]],
            },
            id="split-reordered",
        ),
        pytest.param({c: [ROW0[c], ROW1[c]] for c in COLUMNS}, id="columnar"),
        pytest.param([dict(reversed(ROW0.items())), ROW1], id="records-any-key-order"),
    ],
)
def test_dataframe_layouts_convert_to_the_sample_dtypes(payload: Any):
    frame = MIXED.convert(payload)
    assert list(frame.columns) == COLUMNS
    assert frame.dtypes.to_dict() == _mixed_frame().dtypes.to_dict()
    assert frame["age"].tolist() == [31, 45]
    assert frame["children"].iloc[0] == 1.0
    assert np.isnan(frame["children"].iloc[1])  # float64 sample: NaN, as in training
    assert frame["score"].iloc[0] == 7
    assert frame["score"].iloc[1] is pd.NA  # Int64 sample: pd.NA
    assert frame["joined"].iloc[0] == pd.Timestamp("2020-01-01T10:00:00")
    assert frame["joined"].iloc[1] is pd.NaT
    assert list(frame["plan"].cat.categories) == ["basic", "gold"]
    assert frame["plan"].tolist() == ["gold", "basic"]


def test_single_record_and_split_index():
    frame = MIXED.convert(ROW0)
    assert len(frame) == 1
    frame = MIXED.convert({"columns": COLUMNS, "data": [list(ROW0.values())], "index": ["r1"]})
    assert frame.index.tolist() == ["r1"]


@pytest.mark.parametrize("empty", [[], {"columns": COLUMNS, "data": []}], ids=["list", "split"])
def test_an_empty_batch_is_a_mismatch(empty: Any):
    # {"data": []} used to reach run() (and a 500 from model.predict): the schemas
    # say minItems 1, and the conversion says what is wrong.
    with pytest.raises(SchemaMismatchError, match="no rows"):
        MIXED.convert(empty)


def test_large_batch_converts_every_row():
    rows = [dict(ROW0, age=i) for i in range(100_000)]
    rows[77_777] = dict(ROW1, age=-1)
    frame = MIXED.convert(rows)
    assert len(frame) == 100_000
    assert frame["age"].iloc[77_777] == -1
    assert frame["score"].isna().sum() == 1


def test_large_batch_names_the_bad_row():
    rows = [dict(ROW0) for _ in range(100_000)]
    rows[98_765] = dict(ROW0, age="old")
    with pytest.raises(SchemaMismatchError) as info:
        MIXED.convert(rows)
    assert (info.value.field, info.value.row) == ("age", 98_765)


@pytest.mark.parametrize(
    ("payload", "field", "row", "expected", "words"),
    [
        pytest.param(
            [ROW0, {k: v for k, v in ROW1.items() if k != "age"}],
            "age",
            1,
            "integer",
            "null or missing",
            id="missing-key-in-one-row",
        ),
        pytest.param(
            [{k: v for k, v in ROW0.items() if k != "plan"}],
            "plan",
            None,
            "one of ['basic', 'gold']",
            "missing column 'plan'",
            id="missing-column",
        ),
        pytest.param(
            [ROW0, dict(ROW1, colour="red")], "colour", 1, None, "unexpected column", id="extra"
        ),
        pytest.param([ROW0, dict(ROW1, age="x")], "age", 1, "integer", "'x'", id="str-in-int"),
        pytest.param([ROW0, dict(ROW1, age=1.5)], "age", 1, "integer", "1.5", id="float-in-int"),
        pytest.param([dict(ROW0, age=True)], "age", 0, "integer", "True", id="bool-in-int"),
        pytest.param([dict(ROW0, age=2**70)], "age", 0, "integer", "", id="int-overflow"),
        pytest.param(
            [ROW1, dict(ROW0, children="two")], "children", 1, "integer", "", id="str-nullable-int"
        ),
        pytest.param(
            [ROW0, dict(ROW1, children=0.5)], "children", 1, "integer", "", id="frac-nullable-int"
        ),
        pytest.param([ROW0, dict(ROW1, age=None)], "age", 1, "integer", "null", id="null-in-int"),
        pytest.param(
            [dict(ROW0, income="rich")], "income", 0, "number", "'rich'", id="str-in-number"
        ),
        pytest.param([ROW0, dict(ROW1, member=1)], "member", 1, "boolean", "", id="int-in-bool"),
        pytest.param([ROW0, dict(ROW1, name=5)], "name", 1, "string", "5", id="int-in-string"),
        pytest.param(
            [ROW0, dict(ROW1, plan="platinum")],
            "plan",
            1,
            "one of ['basic', 'gold']",
            "'platinum'",
            id="unknown-category",
        ),
        pytest.param(
            [ROW0, dict(ROW1, plan=None)], "plan", 1, "one of", "null", id="null-category"
        ),
        pytest.param(
            [ROW0, ROW1, dict(ROW1, joined="yesterday")],
            "joined",
            2,
            "datetime (ISO 8601 string)",
            "'yesterday'",
            id="bad-datetime",
        ),
        pytest.param([dict(ROW0, joined=1700000000)], "joined", 0, "datetime", "", id="epoch"),
        pytest.param(
            [ROW0, ROW1, dict(ROW0, joined="01/02/2024")],
            "joined",
            2,
            "datetime",
            "'01/02/2024'",
            id="not-iso-datetime",
        ),
        pytest.param([ROW0, [1, 2]], None, 1, "object", "expected a record", id="row-not-record"),
        pytest.param([[1, 2, 3]], None, 0, "8 values", "got 3 values", id="short-row"),
        pytest.param("a,b", None, None, "array of records", "got str", id="not-a-table"),
        pytest.param({"age": [1, 2], "plan": ["gold"]}, None, None, None, "", id="ragged-columns"),
        pytest.param(
            {"columns": COLUMNS, "data": [[1]]}, None, 0, "8 values", "", id="split-short-row"
        ),
    ],
)
def test_dataframe_mismatches_name_field_row_and_type(
    payload: Any, field: str | None, row: int | None, expected: str | None, words: str
):
    with pytest.raises(SchemaMismatchError) as info:
        MIXED.convert(payload)
    error = info.value
    assert error.status_code == 422
    if field is not None:
        assert error.field == field
        assert repr(field) in error.message
    assert error.row == row
    if row is not None:
        assert f"row {row}" in error.message
    if expected is not None:
        assert error.expected is not None
        assert error.expected.startswith(expected)
    assert words in error.message


def test_integer_column_with_nulls_of_a_hand_written_int64_field_becomes_Int64():
    schema = Schema("dataframe", (Field("n", "integer", nullable=True, dtype="int64"),))
    assert str(schema.convert([{"n": 1}, {"n": None}])["n"].dtype) == "Int64"
    assert str(schema.convert([{"n": 1}, {"n": 2}])["n"].dtype) == "int64"


def test_datetime_offsets_are_honoured():
    naive = infer_schema(pd.DataFrame({"t": pd.to_datetime(["2024-01-01"])}))
    frame = naive.convert([{"t": "2024-01-01T12:00:00+02:00"}, {"t": "2024-01-01"}])
    assert frame["t"].tolist() == [pd.Timestamp("2024-01-01T10:00"), pd.Timestamp("2024-01-01")]
    aware = infer_schema(pd.DataFrame({"t": pd.to_datetime(["2024-01-01"]).tz_localize("UTC")}))
    frame = aware.convert([{"t": "2024-01-01T12:00:00+02:00"}])
    assert frame["t"].iloc[0] == pd.Timestamp("2024-01-01T10:00", tz="UTC")
    assert str(frame["t"].dtype) == str(aware.fields[0].dtype)


def test_number_column_accepts_integers_and_keeps_float32():
    schema = infer_schema(pd.DataFrame({"x": np.array([0.5], dtype="float32")}))
    frame = schema.convert([{"x": 1}, {"x": 2.5}])
    assert frame["x"].dtype == np.float32
    assert frame["x"].tolist() == [1.0, 2.5]


def test_object_string_column_stays_object():
    schema = infer_schema(pd.DataFrame({"s": pd.Series(["a"], dtype=object)}))
    assert schema.convert([{"s": "b"}])["s"].dtype == object


def test_convert_accepts_a_dataframe():
    frame = MIXED.convert(_mixed_frame())
    pd.testing.assert_frame_equal(frame, _mixed_frame())


def test_series_conversion():
    schema = infer_schema(pd.Series([1.0, NAN], name="y"))
    series = schema.convert([3, None, 4])
    assert series.name == "y"
    assert series.dtype == np.float64
    with pytest.raises(SchemaMismatchError, match="row 1") as info:
        schema.convert([1, "x"])
    assert info.value.field == "y"
    with pytest.raises(SchemaMismatchError, match="list"):
        schema.convert({"y": 1})


ARRAY = infer_schema(np.zeros((2, 3), dtype="float32"))


def test_ndarray_conversion_casts_to_schema_dtype():
    array = ARRAY.convert([[1, 2, 3], [4.5, 5, 6]])
    assert array.dtype == np.float32
    assert array.shape == (2, 3)
    with pytest.raises(SchemaMismatchError, match="no rows"):
        ARRAY.convert([])


@pytest.mark.parametrize(
    ("schema", "payload", "row", "words"),
    [
        pytest.param(ARRAY, [[1, 2, 3], [1, 2]], 1, "different lengths", id="ragged"),
        pytest.param(ARRAY, [[1, 2], [3, 4]], None, "expected shape (None, 3), got (2, 2)", id="w"),
        pytest.param(ARRAY, [1, 2, 3], None, "wrap a single row", id="single-row"),
        pytest.param(ARRAY, [[1, 2, 3], [1, "a", 3]], 1, "expected number elements", id="str"),
        pytest.param(ARRAY, [[1, 2, 3], [None, 1, 1]], 1, "None", id="null"),
        pytest.param(
            infer_schema(np.zeros((1, 2), dtype="int64")), [[1, 2], [3, 4.5]], 1, "4.5", id="frac"
        ),
    ],
)
def test_ndarray_mismatches(schema: Schema, payload: Any, row: int | None, words: str):
    with pytest.raises(SchemaMismatchError) as info:
        schema.convert(payload)
    assert info.value.row == row
    assert words in str(info.value)


def test_ndarray_integer_schema_accepts_whole_floats_and_strings_stay_strings():
    ints = infer_schema(np.zeros((1, 2), dtype="int64"))
    assert ints.convert([[1.0, 2.0]]).dtype == np.int64
    words = infer_schema(np.array(["a"]))
    assert words.convert(["a much longer string"]).tolist() == ["a much longer string"]


PY = infer_schema({"name": "x", "tags": ["a"], "scores": [{"v": 1.5, "ok": True}]})


def test_python_conversion_returns_the_same_object():
    data = {"name": "y", "tags": [], "scores": [{"v": 2, "ok": False}], "extra": 1}
    assert PY.convert(data) is data


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        pytest.param({"tags": [], "scores": []}, "data.name", "is missing", id="missing"),
        pytest.param({"name": 1, "tags": [], "scores": []}, "data.name", "string", id="type"),
        pytest.param(
            {"name": "x", "tags": [], "scores": [{"v": 1, "ok": True}, {"v": "a", "ok": True}]},
            "data.scores[1].v",
            "number",
            id="nested",
        ),
        pytest.param(["x"], "data", "object", id="top-level"),
    ],
)
def test_python_mismatches_name_the_path(payload: Any, field: str, words: str):
    with pytest.raises(SchemaMismatchError) as info:
        PY.convert(payload)
    assert info.value.field == field
    assert field in info.value.message
    assert words in info.value.message


def test_python_list_mismatch_names_the_row():
    schema = infer_schema([{"a": 1}])
    with pytest.raises(SchemaMismatchError) as info:
        schema.convert([{"a": 1}, {"a": 2}, {"a": "three"}])
    assert (info.value.field, info.value.row) == ("data[2].a", 2)


def test_python_schema_without_json_accepts_anything():
    schema = Schema("python")
    assert schema.convert({"anything": [1]}) == {"anything": [1]}


def test_mismatch_error_renders_as_a_422_response():
    with pytest.raises(SchemaMismatchError) as info:
        MIXED.convert([dict(ROW0, age="x")])
    body = info.value.to_response()
    assert body["status_code"] == 422
    assert "column 'age', row 0: expected integer" in body["message"]


def test_docstring_examples_run():
    import doctest

    from nbdeploy.core.schema import documents, fields, infer, schema, validate

    results = [
        doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        for module in (fields, schema, infer, validate, documents)
    ]
    assert sum(r.attempted for r in results) > 0
    assert sum(r.failed for r in results) == 0
