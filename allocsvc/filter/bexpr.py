"""go-bexpr filter expressions (``?filter=``) compiled once and evaluated against JSON datums.

Owns ``compile_filter``/``Filter`` and the reproduction of go-bexpr v0.1.13/v0.1.14 evaluation
(``evaluate.go``) over mitchellh/pointerstructure v1.2.1 lookups, as Nomad runs it against a
full ``*structs.Allocation``.  Error texts are go-bexpr's own; ``FilterError.message`` is what
Nomad's HTTP body shows *after* the prefix its HTTP layer adds (``failed to create result
paginator: `` for syntax errors, ``failed to read result page: `` for evaluation errors):

* syntax: ``failed to read filter expression: <pigeon error>`` (nomad/state/paginator).
* lookup: ``error finding value in datum: <pointer> at part <n>: <cause>``.
* coercion: ``error getting match value in expression: strconv.ParseInt: parsing "x": ...``.
* other evaluation errors verbatim (``unable to find suitable primitive comparison function
  for matching``, ``Cannot perform in/contains operations on type ...``, ...).

Go types versus JSON.  go-bexpr reflects over Go values; a datum here is JSON builtins, so
the Go type information lost in JSON comes from a ``GoTypes`` description
(``NOMAD_ALLOCATION_TYPES`` by default):

* An object is a Go *struct* unless its path is declared a Go *map* (``TaskStates``,
  ``Job.Meta``, ...).  The datum itself is the Allocation struct.  A missing struct field is
  an error (``couldn't find key: struct field with name "X"``).  A missing map key is
  go-bexpr's "not present" case: if the key is the last selector part and its parent is a map,
  the match yields ``NotPresentDisposition`` (``==`` false, ``!=`` true, ``in`` false, ``is
  empty`` true, ...); anywhere else it is ``couldn't find key "x"``.
* ``in``/``contains`` on a map tests keys, on a list tests elements (the literal is coerced to
  the element type; lists of objects cannot be searched), on a string tests substrings.
* Selecting through a list needs an index (``Events.0.Type``); ``TaskStates.web.Events.Type``
  is go-bexpr's ``couldn't convert value "Type" to type int`` error.  Use
  ``any TaskStates.web.Events as e { e.Type == "Started" }`` instead.
* Integers are ``int64`` unless named in ``uint_fields`` (``uint64``: negative literals fail to
  coerce) or ``int_fields`` (Go ``int``; only error texts differ).  Strings at ``time_paths`` are
  ``time.Time`` structs in Go and cannot be compared, exactly as in Nomad.
* ``null`` stands for a nil pointer, map or slice: ``is empty`` is true, ``in`` is false,
  ``any``/``all`` see an empty collection, ``==`` fails like go-bexpr does for non-primitives,
  and selecting through it fails (``invalid value kind: invalid``; a nil *map* instead reports
  the missing key).  Where Go would panic (``is empty`` on a struct or number, ``matches`` on
  a nil pointer), the filter raises FilterFieldError with the text of Go's panic instead.
* Map iteration order for ``any``/``all`` is the JSON object order (Go's is random).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from re import Pattern
from typing import Any, NamedTuple, cast

from . import grammar, peg
from .goregexp import GoRegexpError, compile_go_regexp
from .gostr import ERR_SYNTAX, NumError, parse_bool, parse_float, parse_int, parse_uint, quote
from .nodes import NOT_PRESENT_RESULT, And, BindMode, Collection, Match, Node, Not, Op, Or, Selector

SYNTAX_ERROR_PREFIX = "failed to read filter expression: "


class FilterError(Exception):
    """Base of filter failures; ``message`` is the exact text used in the HTTP error body."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FilterSyntaxError(FilterError):
    """The expression does not parse (``bexpr.CreateEvaluator`` failed)."""


class FilterFieldError(FilterError):
    """Evaluation failed: selector not found in the datum, or a type mismatch."""


# --------------------------------------------------------------------------- Go type model


class _Patterns:
    """Dotted path patterns; ``*`` matches one part, a trailing ``**`` any deeper path."""

    _END = "\x00end"

    def __init__(self, patterns: Iterable[str]) -> None:
        self._root: dict[str, Any] = {}
        for pattern in patterns:
            node = self._root
            for part in pattern.split("."):
                node = node.setdefault(part, {})
            node[self._END] = True

    def match(self, path: tuple[str, ...]) -> bool:
        frontier = [self._root]
        for part in path:
            nxt: list[dict[str, Any]] = []
            for node in frontier:
                if "**" in node:
                    return True
                for key in (part, "*"):
                    child = node.get(key)
                    if child is not None:
                        nxt.append(child)
            if not nxt:
                return False
            frontier = nxt
        return any(self._END in node for node in frontier)


class _PathInfo(NamedTuple):
    """What the Go type at one concrete path is, as far as the evaluator cares."""

    is_map: bool
    is_time: bool
    int_kind: str


class GoTypes:
    """The Go type facts JSON erases: maps vs structs, integer widths, ``time.Time`` strings."""

    def __init__(
        self,
        *,
        map_paths: Iterable[str],
        uint_fields: Iterable[str] = (),
        int_fields: Iterable[str] = (),
        time_paths: Iterable[str] = (),
    ) -> None:
        self._maps = _Patterns(map_paths)
        self._times = _Patterns(time_paths)
        self._uints = frozenset(uint_fields)
        self._ints = frozenset(int_fields)
        self._cache: dict[tuple[str, ...], _PathInfo] = {}

    def info(self, path: tuple[str, ...]) -> _PathInfo:
        """Type facts for the value found at ``path`` (cached)."""
        hit = self._cache.get(path)
        if hit is None:
            name = path[-1] if path else ""
            int_kind = "uint64" if name in self._uints else "int" if name in self._ints else "int64"
            hit = _PathInfo(
                bool(path) and self._maps.match(path), bool(path) and self._times.match(path), int_kind
            )
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[path] = hit
        return hit


NOMAD_ALLOCATION_TYPES = GoTypes(
    map_paths=(
        "TaskStates",
        "TaskStates.*.Events.*.Details",
        "TaskResources",
        "AllocatedResources.Tasks",
        "AllocatedResources.TaskLifecycles",
        "Metrics.NodesAvailable",
        "Metrics.ClassFiltered",
        "Metrics.ConstraintFiltered",
        "Metrics.ClassExhausted",
        "Metrics.DimensionExhausted",
        "Metrics.ResourcesExhausted",
        "Metrics.Scores",
        "Job.Meta",
        "Job.TaskGroups.*.Meta",
        "Job.TaskGroups.*.Volumes",
        "Job.TaskGroups.*.Services.*.Meta",
        "Job.TaskGroups.*.Services.*.CanaryMeta",
        "Job.TaskGroups.*.Services.*.TaggedAddresses",
        "Job.TaskGroups.*.Tasks.*.Meta",
        "Job.TaskGroups.*.Tasks.*.Env",
        "Job.TaskGroups.*.Tasks.*.Config",
        "Job.TaskGroups.*.Tasks.*.Config.**",
        "Job.TaskGroups.*.Tasks.*.Services.*.Meta",
        "Job.TaskGroups.*.Tasks.*.Services.*.CanaryMeta",
        "Job.TaskGroups.*.Tasks.*.Services.*.TaggedAddresses",
        "Job.TaskGroups.*.Tasks.*.Artifacts.*.GetterOptions",
        "Job.TaskGroups.*.Tasks.*.Artifacts.*.GetterHeaders",
    ),
    uint_fields=("CreateIndex", "ModifyIndex", "AllocModifyIndex", "JobModifyIndex", "Version", "Restarts"),
    int_fields=(
        "Priority",
        "Count",
        "ExitCode",
        "Signal",
        "NodesEvaluated",
        "NodesFiltered",
        "NodesInPool",
        "NodesExhausted",
        "CoalescedFailures",
    ),
    time_paths=(
        "TaskStates.*.StartedAt",
        "TaskStates.*.FinishedAt",
        "TaskStates.*.LastRestart",
        "AllocStates.*.Time",
        "DeploymentStatus.Timestamp",
    ),
)

# Kinds as the evaluator sees them; "nil" is JSON null, "time" a time.Time string.
_PRIMITIVE = frozenset({"string", "bool", "int", "int64", "uint64", "float64"})
_NUMERIC = frozenset({"bool", "int", "int64", "uint64", "float64"})
_LOCAL_INFO = _PathInfo(is_map=False, is_time=False, int_kind="int")


def _kind(value: object, info: _PathInfo) -> str:
    t = type(value)
    if t is str:
        return "time" if info.is_time else "string"
    if t is bool:
        return "bool"
    if t is int:
        return info.int_kind
    if t is float:
        return "float64"
    if t is dict:
        return "map" if info.is_map else "struct"
    if t is list or t is tuple:
        return "slice"
    if value is None:
        return "nil"
    if isinstance(value, Mapping):
        return "map" if info.is_map else "struct"
    return "struct"


def _kind_name(kind: str) -> str:
    """``reflect.Kind.String()`` of an evaluator kind."""
    return {"time": "struct", "nil": "invalid"}.get(kind, kind)


def _elem_kind(value: object) -> str:
    t = type(value)
    if t is str:
        return "string"
    if t is bool:
        return "bool"
    if t is int:
        return "int64"
    if t is float:
        return "float64"
    if t is dict:
        return "struct"
    if t is list or t is tuple:
        return "slice"
    return "ptr"


def _type_name(value: object, kind: str) -> str:
    """Best-effort ``reflect.Type.String()`` for error texts."""
    if kind == "time":
        return "time.Time"
    if kind == "nil":
        return "<nil>"
    if kind == "slice":
        kinds = {_elem_kind(v) for v in cast(list[object], value)}
        elem = kinds.pop() if len(kinds) == 1 else "interface {}"
        return "[]" + (elem if elem in _PRIMITIVE else "interface {}")
    if kind == "map":
        kinds = {_elem_kind(v) for v in cast(dict[str, object], value).values()}
        elem = kinds.pop() if len(kinds) == 1 else "interface {}"
        return "map[string]" + (elem if elem in _PRIMITIVE else "interface {}")
    return kind


def _pointer(path: tuple[str, ...]) -> str:
    """``pointerstructure.Pointer.String()``."""
    if not path:
        return ""
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)


# --------------------------------------------------------------------------- lookups


class _Local(NamedTuple):
    """A collection placeholder: an alias for ``path`` or, with ``path`` None, a key/index value."""

    name: str
    path: tuple[str, ...] | None
    value: object


Locals = tuple[_Local, ...]


class _PtrError(Exception):
    def __init__(self, message: str, not_found: bool) -> None:
        super().__init__(message)
        self.message = message
        self.not_found = not_found


def _slice_index(part: str) -> int | None:
    """mapstructure's weak string->int decoding that pointerstructure uses for list indexes."""
    try:
        return parse_int(part or "0")
    except NumError:
        return None


def _lookup(datum: object, path: tuple[str, ...], types: GoTypes) -> object:
    """``pointerstructure.Pointer{Parts: path}.Get(datum)`` over JSON builtins."""
    cur = datum
    for i, part in enumerate(path):
        t = type(cur)
        if t is dict or isinstance(cur, Mapping):
            mapping = cast(Mapping[str, object], cur)
            if part in mapping:
                cur = mapping[part]
                continue
            if types.info(path[:i]).is_map:
                raise _PtrError(f"{_pointer(path)} at part {i}: couldn't find key {quote(part)}", True)
            raise _PtrError(
                f"{_pointer(path)} at part {i}: couldn't find key: struct field with name {quote(part)}", True
            )
        if t is list or t is tuple:
            seq = cast(list[object], cur)
            idx = _slice_index(part)
            if idx is None:
                raise _PtrError(
                    f"{_pointer(path)} at part {i}: couldn't convert value {quote(part)} to type int", False
                )
            if idx < 0 or idx >= len(seq):
                raise _PtrError(
                    f"{_pointer(path)} at part {i}: index {idx} is out of range (length = {len(seq)})", False
                )
            cur = seq[idx]
            continue
        info = types.info(path[:i])
        if cur is None and info.is_map:
            raise _PtrError(f"{_pointer(path)} at part {i}: couldn't find key {quote(part)}", True)
        if t is str and info.is_time:
            raise _PtrError(
                f"{_pointer(path)} at part {i}: couldn't find key: struct field with name {quote(part)}", True
            )
        raise _PtrError(
            f"{_pointer(path)}: at part {i}, invalid value kind: {_kind_name(_kind(cur, info))}", False
        )
    return cur


def _parent_is_map(datum: object, path: tuple[str, ...], types: GoTypes) -> bool:
    """go-bexpr's ``evaluateNotPresent``: is the parent of the missing leaf a Go map?"""
    if len(path) < 2:
        return False
    parent_path = path[:-1]
    try:
        parent = _lookup(datum, parent_path, types)
    except _PtrError:
        return False
    return (parent is None or isinstance(parent, Mapping)) and types.info(parent_path).is_map


class _Found(NamedTuple):
    present: bool
    value: object
    info: _PathInfo


_ABSENT = _Found(False, None, _LOCAL_INFO)


def _get_value(datum: object, path: tuple[str, ...], locals_: Locals, types: GoTypes) -> _Found:
    """go-bexpr's ``getValue``: resolve placeholders, then look the path up in the datum."""
    if path and locals_:
        for local in reversed(locals_):
            name = path[0]
            if name != local.name:
                continue
            if local.path is None:
                if len(path) > 1:
                    go_type = "string" if isinstance(local.value, str) else "int"
                    raise FilterFieldError(
                        f"{_pointer((name,))} references a {go_type} so {_pointer(path)} is invalid"
                    )
                return _Found(True, local.value, _LOCAL_INFO)
            path = local.path + path[1:]
    try:
        value = _lookup(datum, path, types)
    except _PtrError as exc:
        if exc.not_found and _parent_is_map(datum, path, types):
            return _ABSENT
        raise FilterFieldError("error finding value in datum: " + exc.message) from None
    return _Found(True, value, types.info(path))


# --------------------------------------------------------------------------- match operators


class _Value:
    """A match value with go-bexpr's per-kind coercions, computed once and memoised."""

    __slots__ = ("_cache", "raw")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self._cache: dict[str, object] = {}

    def coerce(self, kind: str) -> object:
        """``getMatchExprValue``: the raw text as a value of ``kind``; raises NumError."""
        hit = self._cache.get(kind)
        if hit is None:
            try:
                hit = self._convert(kind)
            except NumError as exc:
                hit = exc
            self._cache[kind] = hit
        if isinstance(hit, NumError):
            raise hit
        return hit

    def _convert(self, kind: str) -> object:
        raw = self.raw
        if kind == "bool":
            return parse_bool(raw)
        if kind in ("int", "int64"):
            return parse_int(raw)
        if kind == "uint64":
            return parse_uint(raw)
        if kind == "float64":
            return parse_float(raw)
        return raw


def _coerce(value: _Value, kind: str) -> object:
    try:
        return value.coerce(kind)
    except NumError as exc:
        raise FilterFieldError(f"error getting match value in expression: {exc}") from None


def _equal(value: _Value, found: object, info: _PathInfo) -> bool:
    kind = _kind(found, info)
    if kind == "string":
        return found == value.raw
    if kind not in _NUMERIC:
        raise FilterFieldError("unable to find suitable primitive comparison function for matching")
    return _coerce(value, kind) == found


def _in(value: _Value, found: object, info: _PathInfo, selector: Selector) -> bool:
    kind = _kind(found, info)
    if kind in _NUMERIC:
        _coerce(value, kind)
    if kind == "map":
        return value.raw in cast(dict[str, object], found)
    if kind == "nil":
        return False
    if kind == "slice":
        return _in_slice(value, cast(list[object], found))
    if kind == "string":
        return value.raw in cast(str, found)
    raise FilterFieldError(
        f"Cannot perform in/contains operations on type {_kind_name(kind)} for selector: {quote(str(selector))}"
    )


def _in_slice(value: _Value, items: list[object]) -> bool:
    if not items:
        return False
    kinds = {_elem_kind(item) for item in items}
    if kinds == {"int64", "float64"}:
        kinds = {"float64"}
    if len(kinds) == 1:
        kind = kinds.pop()
        target = _coerce(value, kind)
        if kind not in _PRIMITIVE:
            raise FilterFieldError(
                'unable to find suitable primitive comparison function for "in" comparison'
            )
        return any(item == target for item in items)
    # A mixed JSON list is a []interface{} in Go: each element is checked with its own type
    # and literals that do not parse as that type are skipped.
    for item in items:
        kind = _elem_kind(item)
        try:
            target = value.coerce(kind)
        except NumError as exc:
            if exc.err == ERR_SYNTAX:
                continue
            raise FilterFieldError("error getting interface slice match value in expression") from None
        if kind not in _PRIMITIVE:
            name = "invalid" if item is None else kind
            raise FilterFieldError(
                f'unable to find suitable primitive comparison function for "in" comparison in interface slice: {name}'
            )
        if type(item) is type(target) and item == target:
            return True
    return False


def _is_empty(found: object, info: _PathInfo) -> bool:
    kind = _kind(found, info)
    if kind in ("string", "slice", "map"):
        return len(cast(str, found)) == 0
    if kind == "nil":
        return True
    raise FilterFieldError(f"reflect: call of reflect.Value.Len on {_kind_name(kind)} Value")


class _Regexp:
    """The ``matches`` pattern, compiled on first use like go-bexpr (errors surface at evaluation)."""

    __slots__ = ("_compiled", "_error", "raw")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self._compiled: Pattern[str] | None = None
        self._error: str | None = None

    def search(self, text: str) -> bool:
        if self._compiled is None:
            if self._error is None:
                try:
                    self._compiled = compile_go_regexp(self.raw)
                except GoRegexpError as exc:
                    self._error = f"Failed to compile regular expression {quote(self.raw)}: {exc}"
            if self._error is not None:
                raise FilterFieldError(self._error)
        assert self._compiled is not None
        return self._compiled.search(text) is not None


def _matches(regexp: _Regexp, found: object, info: _PathInfo) -> bool:
    kind = _kind(found, info)
    if kind != "string":
        raise FilterFieldError(f"Value of type {_type_name(found, kind)} is not convertible to []byte")
    return regexp.search(cast(str, found))


# --------------------------------------------------------------------------- compilation

Evaluator = Callable[[object, Locals], bool]
LeafOp = Callable[[object, _PathInfo], bool]


def _leaf_op(node: Match) -> LeafOp:
    op = node.op
    if op in (Op.IS_EMPTY, Op.IS_NOT_EMPTY):
        negate = op is Op.IS_NOT_EMPTY
        return lambda found, info: _is_empty(found, info) != negate
    raw = node.raw if node.raw is not None else ""
    if op in (Op.MATCHES, Op.NOT_MATCHES):
        regexp = _Regexp(raw)
        negate = op is Op.NOT_MATCHES
        return lambda found, info: _matches(regexp, found, info) != negate
    value = _Value(raw)
    if op in (Op.IN, Op.NOT_IN):
        negate = op is Op.NOT_IN
        selector = node.selector
        return lambda found, info: _in(value, found, info, selector) != negate
    negate = op is Op.NOT_EQUAL

    def equal(found: object, info: _PathInfo) -> bool:
        if type(found) is str and not info.is_time:
            return (found == raw) != negate
        return _equal(value, found, info) != negate

    return equal


def _compile_match(node: Match, types: GoTypes) -> Evaluator:
    path = node.selector.path
    head, last = path[:-1], path[-1]
    # Canonical decimal parts may index lists directly (others need Go's base-0 parsing).
    steps = tuple(
        (part, int(part) if part.isascii() and part.isdigit() and (part == "0" or part[0] != "0") else -1)
        for part in head
    )
    info = types.info(path)
    parent_is_map = len(path) >= 2 and types.info(head).is_map
    leaf = _leaf_op(node)
    absent = NOT_PRESENT_RESULT[node.op]

    def evaluate(datum: object, locals_: Locals) -> bool:
        if not locals_:
            # Fast path: plain dict walk; anything unusual goes through go-bexpr's slow path.
            parent: Any = datum
            try:
                for part, index in steps:
                    parent = parent[index] if index >= 0 and type(parent) is list else parent[part]
            except (KeyError, TypeError, IndexError):
                pass
            else:
                if type(parent) is dict:
                    if last in parent:
                        return leaf(parent[last], info)
                    if parent_is_map:
                        return absent
                elif parent is None and parent_is_map:
                    return absent
        found = _get_value(datum, path, locals_, types)
        if not found.present:
            return absent
        return leaf(found.value, found.info)

    return evaluate


def _compile_collection(node: Collection, types: GoTypes) -> Evaluator:
    inner = _compile(node.inner, types)
    selector = node.selector
    binding = node.binding
    want_all = node.all

    def bindings(key: object, element_path: tuple[str, ...], is_map: bool) -> Locals:
        out: list[_Local] = []
        mode = binding.mode
        if mode is BindMode.DEFAULT:
            out.append(
                _Local(binding.default, None, key) if is_map else _Local(binding.default, element_path, None)
            )
        if mode in (BindMode.INDEX, BindMode.INDEX_AND_VALUE):
            out.append(_Local(binding.index, None, key))
        if mode in (BindMode.VALUE, BindMode.INDEX_AND_VALUE):
            out.append(_Local(binding.value, element_path, None))
        return tuple(out)

    def evaluate(datum: object, locals_: Locals) -> bool:
        found = _get_value(datum, selector.path, locals_, types)
        if not found.present:
            return want_all
        value = found.value
        kind = _kind(value, found.info)
        if kind == "nil":
            return want_all
        if kind == "map":
            keys: list[object] = list(cast(dict[str, object], value))
        elif kind == "slice":
            keys = list(range(len(cast(list[object], value))))
        else:
            raise FilterFieldError(f"{selector} is not a list or a map")
        for key in keys:
            if binding.mode is BindMode.INDEX_AND_VALUE and binding.index == binding.value:
                raise FilterFieldError(
                    f"{quote(binding.index)} cannot be used as a placeholder for both the index and the value"
                )
            element_path = (*selector.path, str(key))
            result = inner(datum, locals_ + bindings(key, element_path, kind == "map"))
            if result != want_all:
                return result
        return want_all

    return evaluate


def _flatten(node: Node, kind: type[And] | type[Or]) -> list[Node]:
    """The operands of a right-nested and/or chain, left to right (no recursion)."""
    items: list[Node] = []
    while isinstance(node, kind):
        items.append(node.left)
        node = node.right
    items.append(node)
    return items


def _compile(node: Node, types: GoTypes) -> Evaluator:
    if isinstance(node, Match):
        return _compile_match(node, types)
    if isinstance(node, Not):
        operand = _compile(node.operand, types)
        return lambda datum, locals_: not operand(datum, locals_)
    if isinstance(node, And | Or):
        # Short-circuit left to right, stopping at the first error, like go-bexpr's evaluate.
        parts = tuple(_compile(item, types) for item in _flatten(node, type(node)))
        if isinstance(node, And):
            return lambda datum, locals_: all(part(datum, locals_) for part in parts)
        return lambda datum, locals_: any(part(datum, locals_) for part in parts)
    return _compile_collection(node, types)


def _depth(node: Node) -> int:
    """Nesting depth of the AST (iterative, so any depth can be measured)."""
    deepest = 0
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(current, Not):
            stack.append((current.operand, level + 1))
        elif isinstance(current, And | Or):
            stack += [(current.left, level + 1), (current.right, level + 1)]
        elif isinstance(current, Collection):
            stack.append((current.inner, level + 1))
    return deepest


_SHALLOW = 64


@contextmanager
def _headroom(depth: int) -> Iterator[None]:
    """Raise the recursion limit while compiling/evaluating a deeply nested expression."""
    need = 1000 + 16 * depth
    old = sys.getrecursionlimit()
    if depth <= _SHALLOW or need <= old:
        yield
        return
    sys.setrecursionlimit(need)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@dataclass(frozen=True, slots=True)
class Filter:
    """A compiled filter; ``matches`` evaluates it against one JSON datum (an Allocation)."""

    expression: str
    ast: Node
    _evaluate: Evaluator
    _depth: int

    def matches(self, datum: Mapping[str, Any]) -> bool:
        """True when the datum matches; raises FilterFieldError where go-bexpr errors."""
        if self._depth <= _SHALLOW:
            return self._evaluate(datum, ())
        with _headroom(self._depth):
            return self._evaluate(datum, ())


def parse_expression(expression: str) -> Node:
    """Parse to the AST go-bexpr would build; raises FilterSyntaxError with Nomad's text."""
    node = grammar.parse_fast(expression)
    if node is not None:
        return node
    try:
        return peg.parse(expression)
    except peg.PegSyntaxError as exc:
        raise FilterSyntaxError(SYNTAX_ERROR_PREFIX + str(exc)) from None


def compile_filter(expression: str, *, types: GoTypes = NOMAD_ALLOCATION_TYPES) -> Filter:
    """Compile once, evaluate many.  Nomad skips filtering for an empty ``filter``; so should callers."""
    node = parse_expression(expression)
    depth = _depth(node)
    with _headroom(depth):
        evaluate = _compile(node, types)
    return Filter(expression, node, evaluate, depth)
