"""Agent configuration: defaults, TOML and Nomad-style HCL files, flag overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from allocsvc.cli import build_parser
from allocsvc.config import AgentConfig, ConfigError, load_config


def test_defaults_bind_loopback() -> None:
    config = load_config(None, {})
    assert (config.bind, config.port, config.data_dir) == ("127.0.0.1", 4646, "./data")
    assert not config.acl_enabled
    assert not config.raw_exec
    assert AgentConfig(dev=True).raw_exec


def test_toml_file_and_flag_precedence(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('bind = "127.0.0.2"\nport = 5000\ndata_dir = "/tmp/x"\nacl_enabled = true\ndev = true\n')
    config = load_config(path, {"port": 6000, "bind": None})
    assert (config.bind, config.port, config.data_dir, config.acl_enabled, config.dev) == (
        "127.0.0.2", 6000, "/tmp/x", True, True,
    )  # fmt: skip


def test_nomad_style_hcl(tmp_path: Path) -> None:
    path = tmp_path / "agent.hcl"
    path.write_text(
        'bind_addr = "127.0.0.3"\ndata_dir = "/var/lib/allocsvc"\nports { http = 4747 }\n'
        'acl { enabled = true }\nplugin "raw_exec" { config { enabled = true } }\n'
    )
    config = load_config(path, {})
    assert (config.bind, config.port, config.data_dir) == ("127.0.0.3", 4747, "/var/lib/allocsvc")
    assert config.acl_enabled
    assert config.raw_exec


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("port = 'eighty'\n")
    with pytest.raises(ConfigError, match="port"):
        load_config(path, {})
    path.write_text("no_such_key = 1\n")
    with pytest.raises(ConfigError, match="no_such_key"):
        load_config(path, {})
    broken = tmp_path / "agent.hcl"
    broken.write_text("acl {")
    with pytest.raises(ConfigError, match=r"agent\.hcl"):
        load_config(broken, {})


def test_agent_flags_parse() -> None:
    args = build_parser().parse_args(
        ["agent", "--dev", "--bind", "127.0.0.9", "--port", "0", "--data-dir", "d", "--acl-enabled"]
    )
    assert (args.dev, args.bind, args.port, args.data_dir, args.acl_enabled) == (True, "127.0.0.9", 0, "d", True)
    unset = build_parser().parse_args(["agent"])
    assert unset.dev is None
    assert unset.port is None
