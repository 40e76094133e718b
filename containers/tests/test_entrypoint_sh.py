"""containers/entrypoint.sh and containers/healthcheck.sh, run for real with stand-in programs.

When the tests run as root (CI, a fresh machine), the "unprivileged user" cases drop to UID
65534 with setpriv, as the image and the lead's host test do; as a normal user they run as
that user. Stand-ins for kelpie, pulseaudio and curl record how they were called.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ENTRYPOINT = HERE.parent / "entrypoint.sh"
HEALTHCHECK = HERE.parent / "healthcheck.sh"
IS_ROOT = os.geteuid() == 0
UNPRIV = 65534

RECORDER = """#!/bin/sh
# Records argv and the environment it was started with, as JSON lines.
python3 - "$0" "$@" <<'PY'
import json, os, sys
with open(os.environ["RECORD"], "a") as f:
    f.write(json.dumps({"prog": os.path.basename(sys.argv[1]), "args": sys.argv[2:], "env": dict(os.environ),
                        "uid": os.getuid()}) + "\\n")
PY
exit "${STANDIN_EXIT:-0}"
"""


@pytest.fixture
def sandbox():
    """A world-traversable directory (the unprivileged user must reach it) with stand-ins."""
    root = Path(tempfile.mkdtemp(prefix="kelpie-ep-"))
    try:
        root.chmod(0o777)
        bindir = root / "bin"
        bindir.mkdir()
        bindir.chmod(0o755)
        tmp = root / "tmp"
        tmp.mkdir()
        tmp.chmod(0o1777)
        record = root / "record.jsonl"
        record.touch()
        record.chmod(0o666)
        yield {"root": root, "bin": bindir, "tmp": tmp, "record": record}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def standin(sandbox, name: str) -> Path:
    path = sandbox["bin"] / name
    path.write_text(RECORDER)
    path.chmod(0o755)
    return path


def run(sandbox, args=(), env=None, unprivileged=True, script=ENTRYPOINT):
    base_env = {
        "PATH": f"{sandbox['bin']}:/usr/bin:/bin",
        "TMPDIR": str(sandbox["tmp"]),
        "RECORD": str(sandbox["record"]),
        "HOME": "/nonexistent",
    }
    base_env.update(env or {})
    cmd = [str(script), *args]
    if unprivileged and IS_ROOT:
        cmd = ["setpriv", f"--reuid={UNPRIV}", f"--regid={UNPRIV}", "--clear-groups", "--", *cmd]
    return subprocess.run(cmd, env=base_env, capture_output=True, text=True, timeout=30)


def records(sandbox):
    lines = sandbox["record"].read_text().splitlines()
    return [json.loads(line) for line in lines]


def uid_used():
    return UNPRIV if IS_ROOT else os.getuid()


@pytest.mark.skipif(not IS_ROOT, reason="needs root to test the refusal")
def test_refuses_root_with_a_clear_message(sandbox):
    standin(sandbox, "kelpie")
    r = run(sandbox, ["--size", "800x600"], unprivileged=False)
    assert r.returncode != 0
    assert "refusing to run as root" in r.stderr
    assert "KELPIE_ALLOW_ROOT" in r.stderr
    assert records(sandbox) == [], "kelpie must not have been started"


@pytest.mark.skipif(not IS_ROOT, reason="needs root")
def test_root_allowed_only_when_asked(sandbox):
    standin(sandbox, "kelpie")
    r = run(sandbox, ["--x"], env={"KELPIE_ALLOW_ROOT": "1"}, unprivileged=False)
    assert r.returncode == 0, r.stderr
    assert records(sandbox)[0]["uid"] == 0


def test_execs_kelpie_with_arguments_and_a_private_runtime_dir(sandbox):
    standin(sandbox, "kelpie")
    r = run(sandbox, ["--size", "1280x720", "--framerate", "30"])
    assert r.returncode == 0, r.stderr
    (rec,) = records(sandbox)
    assert rec["prog"] == "kelpie"
    assert rec["args"] == ["--size", "1280x720", "--framerate", "30"]
    assert rec["uid"] == uid_used()
    runtime = Path(rec["env"]["XDG_RUNTIME_DIR"])
    assert runtime == sandbox["tmp"] / f"kelpie-runtime-{uid_used()}"
    st = runtime.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == uid_used()
    # HOME was not writable: a private one under TMPDIR instead.
    home = Path(rec["env"]["HOME"])
    assert home == sandbox["tmp"] / f"kelpie-home-{uid_used()}"
    assert home.is_dir() and home.stat().st_uid == uid_used()
    # Not in a container: the listen address stays kelpie's own default (loopback).
    assert "KELPIE_LISTEN" not in rec["env"]


def test_kelpie_bin_overrides_the_binary(sandbox):
    other = standin(sandbox, "kelpie-custom")
    r = run(sandbox, ["--help-me"], env={"KELPIE_BIN": str(other)})
    assert r.returncode == 0, r.stderr
    assert records(sandbox)[0]["prog"] == "kelpie-custom"


def test_missing_binary_is_a_clear_error(sandbox):
    r = run(sandbox, env={"KELPIE_BIN": "/nonexistent/kelpie"})
    assert r.returncode != 0
    assert "not found" in r.stderr and "KELPIE_BIN" in r.stderr


def test_container_defaults_listen_and_explains_auth(sandbox):
    standin(sandbox, "kelpie")
    r = run(sandbox, env={"KELPIE_CONTAINER": "oci"})
    assert r.returncode == 0, r.stderr
    assert records(sandbox)[0]["env"]["KELPIE_LISTEN"] == "0.0.0.0:8080"
    assert "KELPIE_AUTH" in r.stderr


def test_container_keeps_an_explicit_listen_and_auth(sandbox):
    standin(sandbox, "kelpie")
    r = run(sandbox, ["--auth", "token"], env={"KELPIE_CONTAINER": "oci", "KELPIE_LISTEN": "0.0.0.0:9000"})
    assert r.returncode == 0, r.stderr
    assert records(sandbox)[0]["env"]["KELPIE_LISTEN"] == "0.0.0.0:9000"
    assert "choose how viewers authenticate" not in r.stderr


def test_apptainer_keeps_loopback(sandbox):
    standin(sandbox, "kelpie")
    r = run(sandbox, env={"KELPIE_CONTAINER": "oci", "APPTAINER_CONTAINER": "/x/kelpie.sif"})
    assert r.returncode == 0, r.stderr
    assert "KELPIE_LISTEN" not in records(sandbox)[0]["env"]


def test_token_subcommand_passes_through(sandbox):
    standin(sandbox, "kelpie")
    r = run(sandbox, ["token", "--ttl", "8h"])
    assert r.returncode == 0, r.stderr
    assert records(sandbox)[0]["args"] == ["token", "--ttl", "8h"]


def test_other_commands_are_execed_for_debugging(sandbox):
    standin(sandbox, "kelpie")
    standin(sandbox, "mytool")
    r = run(sandbox, ["mytool", "a"])
    assert r.returncode == 0, r.stderr
    (rec,) = records(sandbox)
    assert rec["prog"] == "mytool" and rec["args"] == ["a"]
    assert rec["env"]["XDG_RUNTIME_DIR"].endswith(f"kelpie-runtime-{uid_used()}")


# PulseAudio is the entrypoint's job only for an existing display: kelpie starts its own
# for the embedded one.
ATTACHED = {"KELPIE_DISPLAY": ":7"}


def test_embedded_desktops_get_pulseaudio_from_kelpie_not_here(sandbox):
    standin(sandbox, "kelpie")
    standin(sandbox, "pulseaudio")
    r = run(sandbox)
    assert r.returncode == 0, r.stderr
    assert [rec["prog"] for rec in records(sandbox)] == ["kelpie"]
    r = run(sandbox, ["--display", ":3"])
    assert "pulseaudio" in [rec["prog"] for rec in records(sandbox)], "attached: the entrypoint starts it"


def test_starts_pulseaudio_in_the_runtime_dir(sandbox):
    standin(sandbox, "kelpie")
    standin(sandbox, "pulseaudio-record")
    pa = sandbox["bin"] / "pulseaudio"
    # Not running yet (--check fails), so the entrypoint must --start it.
    pa.write_text('#!/bin/sh\n[ "$1" = --check ] && exit 1\nexec pulseaudio-record "$@"\n')
    pa.chmod(0o755)
    r = run(sandbox, env=ATTACHED)
    assert r.returncode == 0, r.stderr
    calls = [rec for rec in records(sandbox) if rec["prog"] == "pulseaudio-record"]
    assert len(calls) == 1 and calls[0]["args"] == ["--start", "--exit-idle-time=-1"]
    kelpie = [rec for rec in records(sandbox) if rec["prog"] == "kelpie"][0]
    assert calls[0]["env"]["PULSE_RUNTIME_PATH"] == kelpie["env"]["XDG_RUNTIME_DIR"] + "/pulse"
    assert kelpie["env"]["PULSE_RUNTIME_PATH"] == kelpie["env"]["XDG_RUNTIME_DIR"] + "/pulse"


def test_running_pulseaudio_is_left_alone(sandbox):
    standin(sandbox, "kelpie")
    standin(sandbox, "pulseaudio")  # --check succeeds: already running
    r = run(sandbox, env=ATTACHED)
    assert r.returncode == 0, r.stderr
    assert [rec["args"] for rec in records(sandbox) if rec["prog"] == "pulseaudio"] == [["--check"]]


def test_pulseaudio_failure_is_only_a_warning(sandbox):
    pa = sandbox["bin"] / "pulseaudio"
    pa.write_text("#!/bin/sh\nexit 1\n")
    pa.chmod(0o755)
    standin(sandbox, "kelpie")
    r = run(sandbox, env=ATTACHED)
    assert r.returncode == 0, r.stderr
    assert "PulseAudio did not start" in r.stderr
    assert [rec["prog"] for rec in records(sandbox)] == ["kelpie"]


def test_pulseaudio_can_be_disabled(sandbox):
    standin(sandbox, "kelpie")
    standin(sandbox, "pulseaudio")
    r = run(sandbox, env={**ATTACHED, "KELPIE_PULSEAUDIO": "0"})
    assert r.returncode == 0, r.stderr
    assert [rec["prog"] for rec in records(sandbox)] == ["kelpie"]


@pytest.mark.skipif(not IS_ROOT, reason="needs root to create another user's directory")
def test_refuses_a_runtime_dir_owned_by_someone_else(sandbox):
    standin(sandbox, "kelpie")
    taken = sandbox["tmp"] / f"kelpie-runtime-{UNPRIV}"
    taken.mkdir(mode=0o777)
    taken.chmod(0o777)  # writable, but root's
    r = run(sandbox)
    assert r.returncode != 0
    assert "belongs to another user" in r.stderr
    assert records(sandbox) == []


@pytest.mark.parametrize(
    "env, url",
    [
        ({}, "http://127.0.0.1:8080/health"),
        ({"KELPIE_LISTEN": "0.0.0.0:9000"}, "http://127.0.0.1:9000/health"),
        ({"KELPIE_LISTEN": "[::]:9000", "KELPIE_BASE_PATH": "desk"}, "http://127.0.0.1:9000/desk/health"),
        ({"KELPIE_LISTEN": "10.1.2.3:8443", "KELPIE_TLS_CERT": "/c.pem", "KELPIE_BASE_PATH": "/a/b/"},
         "https://10.1.2.3:8443/a/b/health"),
        # --ops-listen: /health is only there, plain HTTP at the root.
        ({"KELPIE_LISTEN": "0.0.0.0:8080", "KELPIE_OPS_LISTEN": "0.0.0.0:9090", "KELPIE_BASE_PATH": "desk",
          "KELPIE_TLS_CERT": "/c.pem"}, "http://127.0.0.1:9090/health"),
        ({"KELPIE_OPS_LISTEN": "10.0.0.7:9191"}, "http://10.0.0.7:9191/health"),
    ],
)
def test_healthcheck_url_follows_the_settings(sandbox, env, url):
    standin(sandbox, "curl")
    r = run(sandbox, env=env, script=HEALTHCHECK)
    assert r.returncode == 0, r.stderr
    (rec,) = records(sandbox)
    assert rec["args"][-1] == url
    assert "-f" in " ".join(rec["args"]), "curl must fail on HTTP errors (503 = unhealthy)"
