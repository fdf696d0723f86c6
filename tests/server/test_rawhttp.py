"""Raw HTTP scoring scripts (``@rawhttp``): binary in and out, GET with a query,
custom status and headers, permissive API documents; and the Request/Response API."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from nbdeploy.core.rawhttp import Headers, QueryArgs, Request, Response, rawhttp
from nbdeploy.exceptions import BadRequestError, InvalidArgumentError

Serve = Callable[..., TestClient]


def make_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour RGB PNG, written by hand (zlib + struct)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def read_png(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, first pixel) of a PNG written by :func:`make_png`."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    length = struct.unpack(">I", data[33:37])[0]
    rows = zlib.decompress(data[41 : 41 + length])
    return width, height, rows[1:4]


IMAGE_SCORE = """
import json
import struct
import zlib

from nbdeploy import Response, rawhttp


def init():
    pass


def _png(width, height, rgb):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@rawhttp
def run(request):
    if request.method == "GET":
        return {
            "full_path": request.full_path,
            "args": request.args.to_dict(flat=False),
            "size": request.args.get("size", type=int),
            "accept": request.headers.get("accept"),
        }
    if request.mimetype == "application/json":
        return Response({"got": request.get_json()}, status=201)
    body = request.get_data()
    if body.startswith(b"\\x89PNG"):
        width, height = struct.unpack(">II", body[16:24])
        # "inference": the negative of the image's first pixel, same size
        length = struct.unpack(">I", body[33:37])[0]
        pixel = zlib.decompress(body[41:41 + length])[1:4]
        inverted = tuple(255 - c for c in pixel)
        return Response(
            _png(width, height, inverted),
            content_type="image/png",
            headers={"X-Image-Size": f"{width}x{height}", "Cache-Control": "no-store"},
        )
    if body == b"bytes please":
        return bytes(range(256))
    if body == b"boom":
        raise RuntimeError("cannot score that")
    return Response("unsupported payload", status=415, headers={"X-Reason": "not a PNG"})
"""


@pytest.fixture
def raw_client(make_bundle: Callable[..., Path], serve_app: Serve) -> TestClient:
    return serve_app(make_bundle(IMAGE_SCORE, input_sample=np.zeros((1, 3))))


def test_png_in_png_out(raw_client: TestClient) -> None:
    image = make_png(7, 5, (10, 200, 30))
    r = raw_client.post("/score", content=image, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-image-size"] == "7x5"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-request-id"]
    assert read_png(r.content) == (7, 5, bytes((245, 55, 225)))


def test_get_with_a_query_string(raw_client: TestClient) -> None:
    r = raw_client.get("/score?size=3&tag=a&tag=b%20c", headers={"Accept": "text/csv"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "full_path": "/score?size=3&tag=a&tag=b%20c",
        "args": {"size": ["3"], "tag": ["a", "b c"]},
        "size": 3,
        "accept": "text/csv",
    }


def test_json_body_status_and_plain_results(raw_client: TestClient) -> None:
    r = raw_client.post("/score", json={"anything": [1, 2]})  # no "data" key needed
    assert r.status_code == 201
    assert r.json() == {"got": {"anything": [1, 2]}}
    r = raw_client.post("/score", content=b"bytes please")
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == bytes(range(256))
    r = raw_client.post("/score", content=b"text")
    assert r.status_code == 415
    assert r.text == "unsupported payload"
    assert r.headers["x-reason"] == "not a PNG"


def test_errors_in_raw_scripts(raw_client: TestClient) -> None:
    r = raw_client.post("/score", content=b"boom")
    assert r.status_code == 500
    assert "RuntimeError: cannot score that" in r.json()["message"]
    r = raw_client.post("/score", content=b"{bad", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["message"]


def test_raw_bodies_keep_the_size_limit(make_bundle: Callable[..., Path], serve_app: Serve) -> None:
    client = serve_app(make_bundle(IMAGE_SCORE, settings={"max_request_bytes": 100}))
    assert client.post("/score", content=b"x" * 101).status_code == 413


def test_raw_documents_are_permissive_and_valid(raw_client: TestClient) -> None:
    swagger = raw_client.get("/swagger.json").json()
    openapi = raw_client.get("/openapi.json").json()
    validate(swagger)
    validate(openapi)
    assert "Raw HTTP service" in swagger["info"]["description"]
    assert set(swagger["paths"]["/score"]) == {"get", "post"}
    assert "properties" not in swagger["definitions"]["ServiceInput"]  # the model's schema
    assert swagger["consumes"] == ["*/*"]
    post = openapi["paths"]["/score"]["post"]
    assert list(post["requestBody"]["content"]) == ["*/*"]
    assert "422" not in post["responses"]
    assert openapi["paths"]["/score"]["get"]["operationId"] == "RunMLServiceGet"


def test_get_on_an_ordinary_script_is_405(
    make_bundle: Callable[..., Path], serve_app: Serve
) -> None:
    client = serve_app(make_bundle("def init():\n    pass\n\ndef run(data):\n    return data\n"))
    r = client.get("/score")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert "@rawhttp" in r.json()["message"]


def test_request_api() -> None:
    req = Request(
        "post",
        "/score",
        query_string=b"a=1&a=2&b=x+y&empty=",
        headers=[("Content-Type", "application/json; charset=utf-8"), ("X-Key", "v")],
        body=b'{"k": [1]}',
        url_root="http://127.0.0.1:5001",
        remote_addr="127.0.0.1",
    )
    assert req.method == "POST"
    assert req.args["a"] == "1"
    assert req.args.getlist("a") == ["1", "2"]
    assert req.args["b"] == "x y"
    assert req.args.get("empty") == ""
    assert req.args.get("a", type=float) == 1.0
    assert req.args.get("b", -1, type=int) == -1
    assert req.full_path == "/score?a=1&a=2&b=x+y&empty="
    assert req.url == "http://127.0.0.1:5001/score?a=1&a=2&b=x+y&empty="
    assert req.headers["x-key"] == "v"
    assert req.mimetype == "application/json"
    assert req.is_json
    assert req.get_json() == {"k": [1]}
    assert req.json == {"k": [1]}
    assert req.data == req.get_data() == b'{"k": [1]}'
    assert req.get_data(as_text=True) == '{"k": [1]}'
    assert req.content_length == 10
    assert repr(req) == "<Request 'http://127.0.0.1:5001/score?a=1&a=2&b=x+y&empty=' [POST]>"


def test_request_json_rules_and_form() -> None:
    text = Request("POST", "/score", headers={"Content-Type": "text/plain"}, body=b"[1]")
    assert text.get_json() is None
    assert text.get_json(force=True) == [1]
    bad = Request("POST", "/score", headers={"Content-Type": "application/json"}, body=b"{")
    assert bad.get_json(silent=True) is None
    with pytest.raises(BadRequestError, match="not valid JSON"):
        bad.get_json()
    form = Request(
        "POST",
        "/score",
        query_string="q=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=b"name=a%20b&n=2",
    )
    assert form.form.to_dict() == {"name": "a b", "n": "2"}
    assert form.values.to_dict() == {"q": "1", "name": "a b", "n": "2"}


def test_request_repr_never_shows_headers() -> None:
    req = Request("GET", "/score", headers={"Authorization": "Bearer s3cret"})
    assert "s3cret" not in repr(req)
    assert "s3cret" not in repr(req.headers)


def test_response_api() -> None:
    assert Response(b"\x00\x01").content_type == "application/octet-stream"
    assert Response("héllo").get_data() == "héllo".encode()
    assert Response("héllo").content_type == "text/plain; charset=utf-8"
    assert Response(None).get_data() == b""
    r = Response([1, np.int64(2), np.array([3.5])], status_code=202)
    assert (r.status_code, r.get_data(), r.mimetype) == (202, b"[1, 2, [3.5]]", "application/json")
    assert Response("<b>x</b>", mimetype="text/html").content_type == "text/html; charset=utf-8"
    r = Response(b"x", headers={"Content-Type": "image/jpeg"})
    assert r.content_type == "image/jpeg"
    r.set_data("new")
    assert r.data == b"new"
    r.content_type = "text/csv"
    assert r.headers["CONTENT-TYPE"] == "text/csv"
    with pytest.raises(InvalidArgumentError, match="bad HTTP status"):
        Response(b"", status=99)
    with pytest.raises(InvalidArgumentError, match="line break"):
        Response(b"", headers={"X": "a\r\nInjected: 1"})
    with pytest.raises(InvalidArgumentError, match="cannot send a object"):
        Response(object())


def test_headers_and_query_args() -> None:
    h = Headers({"Content-Type": "a"})
    h["content-type"] = "b"
    assert dict(h) == {"content-type": "b"}
    del h["CONTENT-TYPE"]
    assert len(h) == 0
    args = QueryArgs.parse("x=1&y=2&x=3")
    assert list(args) == ["x", "y"]
    assert args.to_dict(flat=False) == {"x": ["1", "3"], "y": ["2"]}


def test_rawhttp_marks_run() -> None:
    from nbdeploy.core.scoring import RAWHTTP_MARKER

    @rawhttp
    def run(request: Request) -> str:
        return request.method

    assert getattr(run, RAWHTTP_MARKER) is True
    assert run(Request("GET", "/")) == "GET"
