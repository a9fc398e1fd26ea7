"""The Go JSON decoding of request bodies and exec messages against answers recorded before a refactor.

``gojson_differential.json`` (beside this file) holds 4,250 inputs — hand cases (empty and
whitespace bodies, every field with every kind of value, case-folded and duplicate keys, invalid
UTF-8, lone surrogate escapes, 10,000+ levels of nesting, trailing bytes, bodies over 64 KiB), the
inputs of ``gojson_golden.json`` and hypothesis draws of valid, mutated and random JSON — with what
the code answered for each when the HTTP body decoder (``gobody.py``) and the exec decoder
(``gojson.py``) were still two implementations: mode ``s``/``r`` the signal/restart body
(``structs.AllocSignalRequest`` / Nomad's anonymous restart struct), mode ``c``/``h``/``f`` the exec
``command`` parameter, ``ws_handshake`` frame and client frame (UTF-8 inputs only). ``changed``
lists the few answers deliberately not kept, with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from allocsvc.http import gojson
from allocsvc.http.client_allocs import RESTART_REQUEST, SIGNAL_REQUEST
from allocsvc.http.exec import COMMAND, HANDSHAKE
from allocsvc.http.exec_stream import CLIENT_FRAME
from tests.unit.test_gojson import _as_go_encodes

RECORDED = json.loads((Path(__file__).parent / "gojson_differential.json").read_text(encoding="utf-8"))
MESSAGES: list[str] = RECORDED["messages"]
MODES = "srchf"


def expand(parts: list[Any]) -> bytes:
    """An input's bytes from its recorded parts."""
    out = bytearray()
    for part in parts:
        if isinstance(part, str):
            out += part.encode()
        elif "hex" in part:
            out += bytes.fromhex(part["hex"])
        else:
            text, count = part["repeat"]
            out += text.encode() * count
    return bytes(out)


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "s": lambda data: gojson.decode_body(data, SIGNAL_REQUEST) or {},
    "r": lambda data: gojson.decode_body(data, RESTART_REQUEST) or {},
    "c": lambda data: gojson.unmarshal(data.decode(), COMMAND),
    "h": lambda data: _as_go_encodes("h", gojson.decode_first(data.decode(), HANDSHAKE)),
    "f": lambda data: _as_go_encodes("f", gojson.decode_first(data.decode(), CLIENT_FRAME)),
}


def answer(mode: str, data: bytes) -> Any:
    """An answer as recorded: an index into MESSAGES for an error, else ``[value]``."""
    try:
        return [DECODERS[mode](data)]
    except gojson.GoJSONError as exc:
        return MESSAGES.index(exc.message) if exc.message in MESSAGES else exc.message


def _show(recorded: Any) -> Any:
    return MESSAGES[recorded] if isinstance(recorded, int) else recorded


@pytest.mark.parametrize("mode", MODES)
def test_answers_match_the_recording(mode: str) -> None:
    column = MODES.index(mode) + 1
    mismatches = []
    for i, case in enumerate(RECORDED["cases"]):
        expected = case[column]
        if expected is None:
            continue
        got = answer(mode, expand(case[0]))
        if got != expected:
            mismatches.append((i, repr(case[0])[:80], _show(expected), _show(got)))
    assert not mismatches, f"{len(mismatches)} differ, first: {mismatches[:5]}"


def test_changed_answers_are_the_smaller_bodies_answers() -> None:
    """Where the old code's answer is not kept: its msgspec dict fast path (bodies over 64 KiB)
    dropped all but the last of duplicate keys; the answer kept is its scanner path's (Go's)."""
    assert len(RECORDED["changed"]) == 3
    for change in RECORDED["changed"]:
        case = RECORDED["cases"][change["case"]]
        data = expand(case[0])
        assert len(data) > 64 * 1024
        assert change["old"] != case[MODES.index(change["mode"]) + 1]
        assert answer(change["mode"], data) == case[MODES.index(change["mode"]) + 1]


def test_recording_covers_the_hard_cases() -> None:
    inputs = [expand(c[0]) for c in RECORDED["cases"]]
    assert len(inputs) >= 4000
    assert {b"", b" ", b"null"} <= set(inputs)
    assert any(len(i) > 64 * 1024 and i.lstrip().startswith(b"{") for i in inputs)
    assert any(i.count(b"[") > 10000 for i in inputs)
    assert any(b"\\ud800" in i for i in inputs)
    assert any(not _is_utf8(i) for i in inputs)
    recorded = {MESSAGES[c[m]] for c in RECORDED["cases"] for m in range(1, 6) if isinstance(c[m], int)}
    for fragment in (
        "EOF",
        "unexpected EOF",
        "Go struct field AllocSignalRequest.QueryOptions.Region of type string",
        "Go struct field AllocSignalRequest.QueryOptions.AllowStale of type bool",
        "Go struct field .TaskName of type string",
        "Go value of type struct { TaskName string; AllTasks bool }",
        "exceeded max depth",
        "after top-level value",
    ):
        assert any(fragment in m for m in recorded), fragment


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


# --- the fast paths answer as the scanner does ---------------------------------------------------

_KEYS = st.sampled_from(["Signal", "signal", "Task", "TaskName", "AllTasks", "Region", "AllowStale", "Pad", "x"])
_VALUES = st.sampled_from(['"v"', '""', '"\\ud800"', "1", "-0.5e1", "true", "false", "null", "{}", '{"a":[1]}', "[]"])
_OBJECTS = st.lists(st.tuples(_KEYS, _VALUES), max_size=5).map(
    lambda pairs: "{" + ",".join(f'"{k}" : {v}' for k, v in pairs) + "}"
)
_NOISE = st.lists(st.sampled_from(['{', '}', '[', ']', ':', ',', ' ', '"', '\\', 'tru', '1', '"Signal"', '"x"']), max_size=8)
_PAD = '"Pad":"' + "x" * (64 * 1024) + '",'


def _without_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gojson, "_well_formed", lambda raw: False)
    monkeypatch.setattr(gojson, "FAST_PATH_BYTES", 1 << 60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_OBJECTS, noise=_NOISE, big=st.booleans(), trailing=st.booleans())
def test_fast_paths_agree_with_the_scanner(
    monkeypatch: pytest.MonkeyPatch, body: str, noise: list[str], big: bool, trailing: bool
) -> None:
    if big:
        body = "{" + _PAD + body[1:] if body != "{}" else "{" + _PAD[:-1] + "}"
    text = body + "".join(noise) if trailing else body
    data = text.encode()
    fast = [answer(mode, data) for mode in MODES]
    with monkeypatch.context() as patched:
        _without_fast_paths(patched)
        assert [answer(mode, data) for mode in MODES] == fast
