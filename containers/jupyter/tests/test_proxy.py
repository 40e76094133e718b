"""jupyter-kelpie through a real jupyter-server + jupyter-server-proxy, with a stand-in kelpie.

The stand-in is a small aiohttp server that accepts Kelpie's command line and checks what
jupyter-server-proxy sends it: the per-launch Basic credentials on every request and on the
WebSocket upgrade, the browser's Host (so Kelpie's Origin check passes) and the stripped
prefix. The real kelpie behind real jupyter-server-proxy is tested by the project's E2E tests;
this one pins down the proxy side of the contract quickly and without X or GStreamer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

websocket = pytest.importorskip("websocket")  # websocket-client
pytest.importorskip("jupyter_server")
pytest.importorskip("jupyter_server_proxy")
pytest.importorskip("aiohttp")

FAKE_KELPIE = textwrap.dedent(
    '''
    import argparse, base64, json, os, sys
    from aiohttp import web

    p = argparse.ArgumentParser()
    p.add_argument("--listen"); p.add_argument("--base-path"); p.add_argument("--auth")
    p.add_argument("--basic-user")
    a = p.parse_args()
    password = os.environ["KELPIE_BASIC_PASSWORD"]
    expected = "Basic " + base64.b64encode(f"{a.basic_user}:{password}".encode()).decode()
    with open(os.environ["FAKE_KELPIE_STATE"], "w") as f:
        json.dump({"listen": a.listen, "base_path": a.base_path, "auth": a.auth}, f)

    @web.middleware
    async def auth(request, handler):
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, text="authentication required\\n")
        return await handler(request)

    def seen(request):
        return {"path": request.path, "host": request.headers.get("Host"),
                "origin": request.headers.get("Origin")}

    async def page(request):
        return web.json_response(seen(request))

    async def ws(request):
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        await sock.send_str(json.dumps(seen(request)))
        async for msg in sock:
            await sock.send_str("echo:" + msg.data)
        return sock

    app = web.Application(middlewares=[auth])
    app.router.add_get("/", page)
    app.router.add_get("/ws", ws)
    host, port = a.listen.rsplit(":", 1)
    web.run_app(app, host=host, port=int(port), print=None)
    '''
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "kelpie"
    fake.write_text(f"#!{sys.executable}\n{FAKE_KELPIE}")
    fake.chmod(0o755)
    state = tmp_path / "fake-state.json"
    port = free_port()
    token = "test-token-0123456789"
    env = dict(os.environ)
    env.update(
        KELPIE_BIN=str(fake),
        FAKE_KELPIE_STATE=str(state),
        # No kelpie-entrypoint on PATH: launch the stand-in directly.
        PATH=os.pathsep.join([str(bindir), os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"),
        HOME=str(tmp_path),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", "--ServerApp.base_url=/user/alice/",
         f"--ServerApp.root_dir={tmp_path}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "jupyter.log", "w"),
    )
    base = f"http://127.0.0.1:{port}/user/alice/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "api/status?token=" + token, timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("jupyter-server did not start:\n" + (tmp_path / "jupyter.log").read_text())
                time.sleep(0.3)
        yield {"base": base, "port": port, "token": token, "state": state, "log": tmp_path / "jupyter.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_page_and_websocket_reach_kelpie_with_credentials(jupyter):
    base, token = jupyter["base"], jupyter["token"]
    req = urllib.request.Request(base + "kelpie/", headers={"Authorization": f"token {token}"})
    try:
        body = json.loads(urllib.request.urlopen(req, timeout=60).read())
    except urllib.error.HTTPError as e:
        pytest.fail(f"{e}: {e.read()!r}\n{jupyter['log'].read_text()}")
    host = f"127.0.0.1:{jupyter['port']}"
    assert body["path"] == "/", "jupyter-server-proxy strips the prefix"
    assert body["host"] == host, "the browser's Host reaches Kelpie (same-origin check)"

    state = json.loads(jupyter["state"].read_text())
    assert state["base_path"] == "/user/alice/kelpie/"
    assert state["auth"] == "basic"
    assert state["listen"].startswith("127.0.0.1:")

    origin = f"http://{host}"
    ws = websocket.create_connection(
        f"ws://{host}/user/alice/kelpie/ws?token={token}", origin=origin, timeout=20
    )
    try:
        hello = json.loads(ws.recv())
        assert hello == {"path": "/ws", "host": host, "origin": origin}
        ws.send("ping")
        assert ws.recv() == "echo:ping"
    finally:
        ws.close()

    # Another local user going straight to Kelpie's loopback port gets nothing.
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://{state['listen']}/", timeout=5)
    assert err.value.code == 401


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_jupyter_still_requires_its_own_login(jupyter):
    """Without Jupyter's login the proxy answers itself (login redirect): Kelpie is not started."""
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(jupyter["base"] + "kelpie/", timeout=10)
    assert err.value.code in (302, 401, 403)
    assert "login" in err.value.headers.get("Location", "login")
    assert not jupyter["state"].exists(), "kelpie must not be launched for an anonymous request"
