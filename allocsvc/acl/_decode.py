"""Decode an HCL1 tree into Nomad's ``acl.Policy`` Go structs, the way ``hcl.Decode`` would.

Owns: a schema of the Go structs in ``nomad/acl/policy.go`` (field names, ``hcl`` tags, kinds), a
port of the parts of ``hashicorp/hcl`` v1 ``decoder.go`` those structs exercise (``decodeStruct``,
``decodeSlice``, ``decodePtr``, ``decodeString``, ``expandObject``, ``unusedKeys``; field names
match case-insensitively like ``ObjectList.Filter``), Nomad's ``hclDecode`` label fix-ups, and
Go ``%#v`` rendering of the decoded structs for error messages.

Consequences worth knowing (all Nomad behaviour):
- Repeated labelled blocks stay separate entries (``namespace "a"`` twice gives two
  ``NamespacePolicy`` values; the ACL later unions them).
- Repeated unlabelled blocks (``node {}`` twice) decode into one struct, later attributes
  overwriting earlier ones, and leave the block name in ``ExtraKeysHCL``.
- Repeated ``capabilities`` attributes in one block concatenate; repeated ``policy`` is last-wins.

Decoder errors carry no ``At line:col:`` prefix: positions are not available from pyhcl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal as TypingLiteral, TypeAlias

from allocsvc.acl._hclast import Item, ListType, Literal, Node, ObjectList, ObjectType, go_type
from allocsvc.gocompat import go_quote


class HclDecodeError(Exception):
    """``hcl.Decode`` (or Nomad's ``hclDecode``) failed; ``str()`` is the Go error text."""


FieldKind = TypingLiteral["key", "string", "strings", "ptr", "slice", "unused"]


@dataclass(frozen=True, slots=True)
class GoField:
    """One Go struct field: its Go name, the name HCL matches, its kind and element type."""

    go_name: str
    hcl_name: str
    kind: FieldKind
    elem: str = ""


def _f(go_name: str, kind: FieldKind, hcl_name: str | None = None, elem: str = "") -> GoField:
    return GoField(go_name, go_name if hcl_name is None else hcl_name, kind, elem)


_POLICY_CAPS = (_f("Policy", "string"), _f("Capabilities", "strings"))
_LABELLED = (_f("Name", "key", ""), *_POLICY_CAPS)

SCHEMA: Final[dict[str, tuple[GoField, ...]]] = {
    "Policy": (
        _f("Namespaces", "slice", "namespace", "NamespacePolicy"),
        _f("NodePools", "slice", "node_pool", "NodePoolPolicy"),
        _f("HostVolumes", "slice", "host_volume", "HostVolumePolicy"),
        _f("Agent", "ptr", "agent", "AgentPolicy"),
        _f("Node", "ptr", "node", "NodePolicy"),
        _f("Operator", "ptr", "operator", "OperatorPolicy"),
        _f("Sentinel", "ptr", "sentinel", "SentinelPolicy"),
        _f("Quota", "ptr", "quota", "QuotaPolicy"),
        _f("Plugin", "ptr", "plugin", "PluginPolicy"),
        _f("ExtraKeysHCL", "unused", ""),
    ),
    "NamespacePolicy": (*_LABELLED, _f("Variables", "ptr", "variables", "VariablesPolicy")),
    "VariablesPolicy": (_f("Paths", "slice", "path", "VariablesPathPolicy"),),
    "VariablesPathPolicy": (_f("PathSpec", "key", ""), _f("Capabilities", "strings")),
    "NodePoolPolicy": _LABELLED,
    "HostVolumePolicy": _LABELLED,
    "AgentPolicy": (_f("Policy", "string"),),
    "NodePolicy": (_f("Policy", "string"),),
    "OperatorPolicy": _POLICY_CAPS,
    "SentinelPolicy": _POLICY_CAPS,
    "QuotaPolicy": (_f("Policy", "string"),),
    "PluginPolicy": (_f("Policy", "string"),),
}

GoValue: TypeAlias = "str | list[str] | list[GoStruct] | GoStruct | None"


@dataclass(eq=False, slots=True)
class GoStruct:
    """A mutable stand-in for one decoded Go struct; absent fields are Go zero values."""

    type_name: str
    values: dict[str, GoValue] = field(default_factory=dict)

    def string(self, name: str) -> str:
        value = self.values.get(name)
        return value if isinstance(value, str) else ""

    def strings(self, name: str) -> list[str] | None:
        value = self.values.get(name)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None

    def set_strings(self, name: str, value: list[str] | None) -> None:
        self.values[name] = value

    def ptr(self, name: str) -> GoStruct | None:
        value = self.values.get(name)
        return value if isinstance(value, GoStruct) else None

    def structs(self, name: str) -> list[GoStruct] | None:
        value = self.values.get(name)
        return [v for v in value if isinstance(v, GoStruct)] if isinstance(value, list) else None


# --- hcl decoder port -----------------------------------------------------------------------------

DNode = Node | Item | ObjectList


def _equal_fold(a: str, b: str) -> bool:
    """Go ``strings.EqualFold`` (simple case folding, rune by rune)."""
    return len(a) == len(b) and all(
        x == y or x.lower() == y.lower() or x.upper() == y.upper() for x, y in zip(a, b, strict=True)
    )


def filter_items(items: list[Item], key: str) -> list[Item]:
    """HCL1 ``ObjectList.Filter(key)``: items whose first key folds to ``key``, that key stripped."""
    return [
        Item(it.keys[1:], it.val)
        for it in items
        if it.keys and (it.keys[0] == key or _equal_fold(it.keys[0], key))
    ]


def _remove_case_fold(keys: list[str], key: str) -> None:
    for i, k in enumerate(keys):
        if _equal_fold(k, key):
            del keys[i]
            return


def _decode(name: str, node: DNode, fld: GoField, target: GoStruct) -> None:
    if fld.kind == "string":
        target.values[fld.go_name] = _decode_string(name, node)
    elif fld.kind == "strings":
        target.values[fld.go_name] = _decode_string_slice(name, node, target.strings(fld.go_name))
    elif fld.kind == "ptr":
        existing = target.ptr(fld.go_name)
        if existing is None:
            fresh = GoStruct(fld.elem)
            _decode_struct(name, node, fresh)
            target.values[fld.go_name] = fresh
        else:
            _decode_struct(name, node, existing)
    elif fld.kind == "slice":
        target.values[fld.go_name] = _decode_struct_slice(name, node, fld.elem, target.structs(fld.go_name))


def _decode_string(name: str, node: DNode) -> str:
    if isinstance(node, Literal) and node.kind in ("STRING", "HEREDOC", "NUMBER", "FLOAT", "BOOL"):
        return node.text
    raise HclDecodeError(f"{name}: unknown type for string {go_type(node)}")


def _slice_items(node: DNode) -> list[DNode]:
    if isinstance(node, ObjectList):
        return list(node.items)
    if isinstance(node, ObjectType):
        return [node]
    if isinstance(node, ListType):
        return list(node.elems)
    raise HclDecodeError(f"unknown slice type: {go_type(node)}")


def _decode_string_slice(name: str, node: DNode, existing: list[str] | None) -> list[str]:
    result = list(existing) if existing is not None else []
    for i, item in enumerate(_slice_items(node)):
        result.append(_decode_string(f"{name}[{i}]", item))
    return result


def _expand_object(node: DNode) -> DNode:
    if not isinstance(node, Item) or len(node.keys) != 2:
        return node
    return Item(node.keys[:1], ObjectType([Item(node.keys[1:], node.val)]))


def _decode_struct_slice(
    name: str, node: DNode, elem: str, existing: list[GoStruct] | None
) -> list[GoStruct]:
    result = list(existing) if existing is not None else []
    for i, item in enumerate(_slice_items(node)):
        value = GoStruct(elem)
        _decode_struct(f"{name}[{i}]", _expand_object(item), value)
        result.append(value)
    return result


def _decode_struct(name: str, node: DNode, target: GoStruct) -> None:
    item: Item | None = None
    if isinstance(node, Item):
        item = node
        node = node.val
    if isinstance(node, ObjectType):
        node = ObjectList(node.items)
    if isinstance(node, Literal) and item is not None:
        node = ObjectList([item])
    if not isinstance(node, ObjectList):
        raise HclDecodeError(f"{name}: not an object type for struct ({go_type(node)})")

    unused = [k for it in node.items for k in it.keys]
    unused_fields: list[GoField] = []
    for fld in SCHEMA[target.type_name]:
        if fld.kind == "key":
            if item is None:
                raise HclDecodeError(f"{name}: {fld.go_name} asked for 'key', impossible")
            target.values[fld.go_name] = item.keys[0] if item.keys else ""
            continue
        if fld.kind == "unused":
            unused_fields.append(fld)
            continue
        matched = filter_items(node.items, fld.hcl_name)
        prefix = [m for m in matched if m.keys]
        exact = [m for m in matched if not m.keys]
        if not matched:
            continue
        _remove_case_fold(unused, fld.hcl_name)
        field_name = f"{name}.{fld.hcl_name}"
        if prefix:
            _decode(field_name, ObjectList(prefix), fld, target)
        for match in exact:
            value: DNode = ObjectList(match.val.items) if isinstance(match.val, ObjectType) else match.val
            _decode(field_name, value, fld, target)
    if unused:
        for fld in unused_fields:
            target.values[fld.go_name] = sorted(unused)


# --- Nomad's hclDecode -----------------------------------------------------------------------------


def _index_panic(index: int, length: int) -> HclDecodeError:
    return HclDecodeError(
        f"invalid acl policy: runtime error: index out of range [{index}] with length {length}"
    )


_NIL_PANIC = "invalid acl policy: runtime error: invalid memory address or nil pointer dereference"


def remove_extra_key(policy: GoStruct, key: str) -> None:
    """Nomad's ``Policy.removeExtraKey``: drop one exact occurrence from ``ExtraKeysHCL``."""
    extra = policy.strings("ExtraKeysHCL")
    if extra is not None and key in extra:
        extra.remove(key)
        policy.set_strings("ExtraKeysHCL", extra)


def decode_policy(root: ObjectList) -> GoStruct:
    """``hcl.Decode`` into ``acl.Policy`` followed by Nomad's ``hclDecode`` label fix-ups."""
    policy = GoStruct("Policy")
    _decode_struct("root", root, policy)

    namespaces = policy.structs("Namespaces") or []
    for i, ns_obj in enumerate(filter_items(root.items, "namespace")):
        if not ns_obj.keys:
            if i >= len(namespaces):
                raise _index_panic(i, len(namespaces))
            namespaces[i].values["Name"] = ""
        if i > 0:
            remove_extra_key(policy, "namespace")
        if not isinstance(ns_obj.val, ObjectType):
            continue
        vars_list = filter_items(ns_obj.val.items, "variables")
        if not vars_list or not isinstance(vars_list[0].val, ObjectType):
            continue
        for j, path in enumerate(filter_items(vars_list[0].val.items, "path")):
            if path.keys:
                continue
            if i >= len(namespaces):
                raise _index_panic(i, len(namespaces))
            variables = namespaces[i].ptr("Variables")
            if variables is None:
                raise HclDecodeError(_NIL_PANIC)
            paths = variables.structs("Paths") or []
            if j >= len(paths):
                raise _index_panic(j, len(paths))
            paths[j].values["PathSpec"] = ""

    for block, go_name in (("node_pool", "NodePools"), ("host_volume", "HostVolumes")):
        entries = policy.structs(go_name) or []
        for i, obj in enumerate(filter_items(root.items, block)):
            if not obj.keys:
                if i >= len(entries):
                    raise _index_panic(i, len(entries))
                entries[i].values["Name"] = ""
            if i > 0:
                remove_extra_key(policy, block)
    return policy


# --- Go %#v -----------------------------------------------------------------------------------------

# Go prints the address of a non-nil nested pointer; ours is a fixed stand-in.
_FAKE_ADDRESS = "0xc000010000"


def go_sharp_v(value: GoStruct) -> str:
    """Render ``&acl.T{...}`` as Go's ``%#v`` does for a pointer to a decoded struct."""
    parts = []
    for fld in SCHEMA[value.type_name]:
        raw = value.values.get(fld.go_name)
        if fld.kind in ("key", "string"):
            text = go_quote(raw if isinstance(raw, str) else "")
        elif fld.kind in ("strings", "unused"):
            items = value.strings(fld.go_name)
            text = "[]string(nil)" if items is None else "[]string{" + ", ".join(map(go_quote, items)) + "}"
        elif fld.kind == "ptr":
            text = f"(*acl.{fld.elem})({'nil' if raw is None else _FAKE_ADDRESS})"
        else:
            structs = value.structs(fld.go_name)
            if structs is None:
                text = f"[]*acl.{fld.elem}(nil)"
            else:
                text = (
                    f"[]*acl.{fld.elem}{{"
                    + ", ".join(f"(*acl.{fld.elem})({_FAKE_ADDRESS})" for _ in structs)
                    + "}"
                )
        parts.append(f"{fld.go_name}:{text}")
    return f"&acl.{value.type_name}{{{', '.join(parts)}}}"
