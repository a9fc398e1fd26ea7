"""``allocsvc.http.gojson`` against answers recorded from Go's own ``encoding/json``.

``gojson_golden.json`` (beside this file) was produced by a Go 1.19 program decoding each input the way Nomad
does: ``json.Unmarshal`` into ``[]string`` for the exec ``command`` parameter (mode ``c``), and
gorilla's ``ReadJSON`` (``json.NewDecoder(r).Decode``, ``io.EOF`` → ``unexpected EOF``) into
``agent.wsHandshakeMessage`` (mode ``h``) and ``proto.ExecTaskStreamingRequest`` (mode ``f``).
Successful decodes are compared through Go's re-encoding (omitempty applied).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from allocsvc.http import gojson
from allocsvc.http.exec import COMMAND, HANDSHAKE
from allocsvc.http.exec_stream import CLIENT_FRAME

GOLDEN = json.loads((Path(__file__).parent / "gojson_golden.json").read_text())["cases"]


def _as_go_encodes(mode: str, value: Any) -> Any:
    """The decoded value re-encoded the way Go's ``json.Marshal`` prints the Go struct."""
    if mode == "c":
        return value
    if mode == "h":
        value = value or {}
        return {"version": value.get("version", 0), "auth_token": value.get("auth_token", "")}
    out: dict[str, Any] = {}
    for name, fields in (("setup", ("command", "tty")), ("stdin", ("data", "close")), ("tty_size", ("height", "width"))):
        if name in (value or {}):
            part = {k: v for k, v in value[name].items() if k in fields and v}
            if "data" in part:
                part["data"] = base64.b64encode(part["data"]).decode()
            out[name] = part
    return out


def _decode(mode: str, text: str) -> tuple[str, Any]:
    try:
        if mode == "c":
            return "OK", gojson.unmarshal(text, COMMAND)
        return "OK", _as_go_encodes(mode, gojson.decode_first(text, HANDSHAKE if mode == "h" else CLIENT_FRAME))
    except gojson.GoJSONError as exc:
        return "ERR", exc.message


@pytest.mark.parametrize(("mode", "text", "kind", "expected"), GOLDEN, ids=[f"{c[0]}:{c[1]!r}"[:60] for c in GOLDEN])
def test_matches_go(mode: str, text: str, kind: str, expected: Any) -> None:
    assert _decode(mode, text) == (kind, expected)


def test_golden_covers_every_kind_of_message() -> None:
    messages = {c[3] for c in GOLDEN if c[2] == "ERR"}
    for fragment in (
        "looking for beginning of value",
        "looking for beginning of object key string",
        "after object key",
        "after object key:value pair",
        "after array element",
        "after top-level value",
        "in string literal",
        "in string escape code",
        "in numeric literal",
        "in literal true (expecting 'r')",
        "unexpected end of JSON input",
        "unexpected EOF",
        "into Go value of type []string",
        "into Go struct field wsHandshakeMessage.version of type int",
        "into Go struct field ExecTaskStreamingIOOperation.stdin.data of type []uint8",
        "into Go struct field ExecTaskStreamingRequest_TerminalSize.tty_size.height of type int32",
        "illegal base64 data at input byte",
    ):
        assert any(fragment in m for m in messages), fragment


def test_nesting_deeper_than_go_allows() -> None:
    with pytest.raises(gojson.GoJSONError) as err:
        gojson.unmarshal("[" * 10001, COMMAND)
    assert err.value.message == "invalid character '[' exceeded max depth"
    # 10,000 levels are still valid JSON to Go; Python's recursive parsers give up much earlier.
    with pytest.raises(gojson.GoJSONError) as err:
        gojson.unmarshal("[" * 10000 + "]" * 10000, COMMAND)
    assert err.value.message == "json: cannot unmarshal array into Go value of type string"
    deep = '{"x":' + "[" * 9000 + "]" * 9000 + ',"stdin":{"data":"aGk="}}'
    assert gojson.decode_first(deep, CLIENT_FRAME) == {"stdin": {"data": b"hi"}}


def test_decoder_reads_only_the_first_value() -> None:
    assert gojson.decode_first('{"stdin":{"close":true}} {"garbage', CLIENT_FRAME) == {"stdin": {"close": True}}
    with pytest.raises(gojson.GoJSONError) as err:
        gojson.unmarshal('["a"] x', COMMAND)
    assert err.value.message == "invalid character 'x' after top-level value"


def test_body_decoder() -> None:
    """``decode_body`` is the Decoder on an HTTP body: ``EOF`` where gorilla says ``unexpected EOF``."""
    target = gojson.go_struct(
        "structs.Request", {"Name": gojson.go_string()}, embedded={"Options": {"Stale": gojson.go_bool()}}
    )
    for empty in (b"", b" \r\n\t"):
        with pytest.raises(gojson.GoJSONError) as err:
            gojson.decode_body(empty, target)
        assert err.value.message == "EOF"
        with pytest.raises(gojson.GoJSONError) as err:
            gojson.decode_first(empty, target)
        assert err.value.message == "unexpected EOF"
    assert gojson.decode_body(b'{"name":"a","STALE":true} trailing', target) == {"Name": "a", "Stale": True}
    assert gojson.decode_body(b"null", target) is None
    # Invalid UTF-8 and lone surrogates in bytes become U+FFFD, as Go decodes them.
    assert gojson.decode_body(b'{"Name":"\xff\\ud800"}', target) == {"Name": "\ufffd\ufffd"}


def test_struct_field_paths() -> None:
    """Go names an embedded struct in a promoted field's error path, and no name for an unnamed struct."""
    embedded = gojson.go_struct(
        "structs.Request", {"Name": gojson.go_string()}, embedded={"Options": {"Stale": gojson.go_bool()}}
    )
    anonymous = gojson.go_struct("struct { Name string }", {"Name": gojson.go_string()})
    for target, body, message in (
        (embedded, b'{"Stale":"x"}', "Go struct field Request.Options.Stale of type bool"),
        (embedded, b'{"Name":1}', "Go struct field Request.Name of type string"),
        (anonymous, b'{"Name":true}', "Go struct field .Name of type string"),
        (anonymous, b"[]", "Go value of type struct { Name string }"),
    ):
        with pytest.raises(gojson.GoJSONError) as err:
            gojson.decode_body(body, target)
        assert err.value.message.endswith(message)
