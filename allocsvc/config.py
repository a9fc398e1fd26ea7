"""Agent configuration: defaults, the config file (TOML or Nomad-style HCL) and CLI overrides.

Owns ``AgentConfig`` and ``load_config``. Every CLI flag has a file equivalent; Nomad's own
agent keys (``bind_addr``, ``ports { http }``, ``data_dir``, ``acl { enabled }``,
``plugin "raw_exec" { config { enabled } }``) are accepted too.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec


class ConfigError(Exception):
    """The config file or a flag is invalid; the message says which key."""


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the agent needs to start."""

    bind: str = "127.0.0.1"
    port: int = 4646
    data_dir: str = "./data"
    dev: bool = False
    acl_enabled: bool = False
    raw_exec_enabled: bool = False
    node_name: str = ""
    region: str = "global"
    datacenter: str = "dc1"
    log_level: str = "INFO"
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    mailbox_size: int = 64
    snapshot_every: int = 0

    @property
    def raw_exec(self) -> bool:
        """raw_exec is on in dev mode or when enabled, as on Nomad."""
        return self.dev or self.raw_exec_enabled


def _from_nomad_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Translate Nomad agent-config keys to ours."""
    out = dict(data)
    if "bind_addr" in out:
        out["bind"] = out.pop("bind_addr")
    ports = out.pop("ports", None)
    if isinstance(ports, dict) and "http" in ports:
        out["port"] = ports["http"]
    acl = out.pop("acl", None)
    if isinstance(acl, dict) and "enabled" in acl:
        out["acl_enabled"] = acl["enabled"]
    plugin = out.pop("plugin", None)
    if isinstance(plugin, dict):
        raw = plugin.get("raw_exec", {})
        enabled = raw.get("config", {}).get("enabled") if isinstance(raw, dict) else None
        if enabled is not None:
            out["raw_exec_enabled"] = enabled
    if "name" in out:
        out["node_name"] = out.pop("name")
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a ``.toml`` file, or HCL/JSON for anything else."""
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            import hcl  # pyhcl: Nomad's HCL1 syntax

            data = hcl.loads(text)
    except Exception as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a table")
    return _from_nomad_keys(data)


def load_config(path: Path | None, overrides: dict[str, Any]) -> AgentConfig:
    """Defaults, then the file, then explicit CLI flags (non-None values win)."""
    data: dict[str, Any] = read_config_file(path) if path is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(data, AgentConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
