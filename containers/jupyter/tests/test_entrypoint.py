"""The jupyter-server-proxy configuration that jupyter-kelpie's entry point returns."""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points

import pytest

import jupyter_kelpie

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def config():
    return jupyter_kelpie.setup_kelpie()


def arg_after(command, flag):
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def test_entry_point_is_registered():
    """jupyter-server-proxy finds servers through this entry-point group."""
    eps = entry_points(group="jupyter_serverproxy_servers")
    names = {ep.name: ep for ep in eps}
    assert "kelpie" in names, f"entry point not installed; found {sorted(names)}"
    assert names["kelpie"].load() is jupyter_kelpie.setup_kelpie


def test_command_listens_on_loopback_at_the_proxy_port(config):
    command = config["command"]
    assert all(isinstance(a, str) for a in command)
    assert arg_after(command, "--listen") == "127.0.0.1:{port}"


def test_command_sets_the_base_path_under_the_jupyter_base_url(config):
    # The entry point is named "kelpie", so the proxy serves {base_url}kelpie/.
    assert arg_after(config["command"], "--base-path") == "{base_url}kelpie/"
    assert config["absolute_url"] is False


def test_every_launch_has_its_own_secret_credentials(config):
    """Basic auth with a per-launch password: other local users can't use the loopback port."""
    command = config["command"]
    assert arg_after(command, "--auth") == "basic"
    user = arg_after(command, "--basic-user")
    password = config["environment"]["KELPIE_BASIC_PASSWORD"]
    assert len(password) >= 32
    assert password not in " ".join(command), "the password must not be on the command line (ps shows it)"
    header = config["request_headers_override"]["Authorization"]
    assert header.startswith("Basic ")
    assert base64.b64decode(header[len("Basic "):]).decode() == f"{user}:{password}"
    assert jupyter_kelpie.setup_kelpie()["environment"]["KELPIE_BASIC_PASSWORD"] != password


def test_placeholders_are_only_the_ones_jupyter_server_proxy_fills(config):
    """Every {…} in the command and environment must be a jupyter-server-proxy template key."""
    values = dict(port=8888, base_url="/user/alice/", unix_socket="/tmp/x.sock")
    rendered = [arg.format(**values) for arg in config["command"]]
    assert "127.0.0.1:8888" in rendered
    assert "/user/alice/kelpie/" in rendered
    for value in config["environment"].values():
        value.format(**values)


def test_launcher_entry(config):
    entry = config["launcher_entry"]
    assert entry["enabled"] is True
    assert entry["title"] == "Desktop (Kelpie)"
    # A Lab tab's iframe sandbox lacks pointer lock, clipboard and fullscreen.
    assert config["new_browser_tab"] is True
    assert config["timeout"] >= 20, "Kelpie needs time to start X, the session and the encoder"


def test_icon_exists_and_is_valid_svg(config):
    path = config["launcher_entry"]["icon_path"]
    assert os.path.isabs(path) and os.path.isfile(path)
    root = ET.parse(path).getroot()
    assert root.tag == SVG_NS + "svg"
    assert root.get("viewBox")
    assert len(list(root)) > 1, "the icon draws something"


def test_only_known_server_process_keys(config):
    """No misspelt keys: they would be rejected (or ignored) by jupyter-server-proxy."""
    known = {
        "command", "environment", "timeout", "absolute_url", "port", "unix_socket", "mappath",
        "launcher_entry", "new_browser_tab", "request_headers_override", "rewrite_response",
        "update_last_activity", "raw_socket_proxy", "progressive", "exclude_last_activity_patterns",
    }
    assert set(config) <= known, set(config) - known
    assert set(config["launcher_entry"]) <= {"enabled", "icon_path", "title", "path_info", "category"}


def test_jupyter_server_proxy_accepts_the_config(config):
    """The real ServerProcess class (traitlets) validates every key and type."""
    cfg = pytest.importorskip("jupyter_server_proxy.config")
    loaded = {p.name: p for p in cfg.get_entrypoint_server_processes()}
    assert "kelpie" in loaded, "jupyter-server-proxy could not load the entry point"
    process = loaded["kelpie"]
    assert process.launcher_entry.title == "Desktop (Kelpie)"
    assert process.timeout == config["timeout"]
    assert process.request_headers_override["Authorization"].startswith("Basic ")


def test_launcher_prefers_the_entrypoint_script(tmp_path, monkeypatch):
    for name in ("kelpie-entrypoint", "kelpie"):
        exe = tmp_path / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KELPIE_BIN", raising=False)
    assert jupyter_kelpie.launcher_command() == [str(tmp_path / "kelpie-entrypoint")]
    (tmp_path / "kelpie-entrypoint").unlink()
    assert jupyter_kelpie.launcher_command() == [str(tmp_path / "kelpie")]
    monkeypatch.setenv("KELPIE_BIN", "/opt/kelpie/bin/kelpie")
    assert jupyter_kelpie.launcher_command() == ["/opt/kelpie/bin/kelpie"]
