"""jupyter-server-proxy entry point for Kelpie: a Linux desktop in a JupyterLab tab.

Installing this package adds a "Desktop (Kelpie)" tile to the JupyterLab launcher (and to
the classic notebook's New menu). Opening it makes jupyter-server-proxy start Kelpie on a free
loopback port and proxy ``{base_url}kelpie/`` to it, WebSocket included.

How the pieces fit
------------------
* **Authentication.** Jupyter already authenticated the user before jupyter-server-proxy
  forwards anything, so viewers need no second login. Kelpie still must not be open to
  *other users of the same machine*: on a shared HPC login or compute node (BatchSpawner,
  SLURM-spawned servers, a shared JupyterHub host) anyone can connect to 127.0.0.1. So
  instead of ``--auth none`` (which Kelpie accepts on loopback), each launch gets a random
  HTTP Basic password, given to Kelpie through its environment (never on the command line,
  which ``ps`` shows to everyone) and added by jupyter-server-proxy to every proxied request
  and WebSocket upgrade (``request_headers_override``). The browser never sees it; a local
  process without it gets 401. In a single-user Kubernetes pod this costs nothing.
* **Base path.** jupyter-server-proxy strips ``{base_url}kelpie`` before forwarding
  (``absolute_url: False``); ``--base-path {base_url}kelpie/`` tells Kelpie the public
  prefix anyway (cookie paths, redirects). Kelpie works with the prefix stripped or not.
* **Origin check.** jupyter-server-proxy forwards the browser's ``Host`` header unchanged,
  so the WebSocket's ``Origin`` matches the page and Kelpie's same-origin check passes with
  no ``--allowed-origins``. Set ``KELPIE_ALLOWED_ORIGINS`` in the server's environment if a
  proxy in front of JupyterHub rewrites ``Host``.
* **Which binary.** ``kelpie-entrypoint`` (the container image's entrypoint script, which
  prepares ``XDG_RUNTIME_DIR``, a writable home and PulseAudio) when it is on ``PATH``, else
  ``$KELPIE_BIN``, else ``kelpie``. Other settings (``KELPIE_SIZE``, ``KELPIE_ENCODER``, ...)
  come from the environment of the Jupyter server as usual.
* **Timeout.** Kelpie starts an X server, a desktop session and probes the encoders before it
  answers, which takes longer than jupyter-server-proxy's default 5 s.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
from typing import Any, Dict, List

__all__ = ["setup_kelpie", "icon_path", "launcher_command"]

#: URL path under the Jupyter base URL (the entry point's name in pyproject.toml).
NAME = "kelpie"
#: User name of the per-launch Basic credentials (any name works; it shows in Kelpie's logs).
PROXY_USER = "jupyter"


def icon_path() -> str:
    """Absolute path of the launcher icon (an SVG shipped with the package)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "icons", "kelpie.svg")


def launcher_command() -> List[str]:
    """The program to run: the image's entrypoint script if present, else kelpie itself."""
    entrypoint = shutil.which("kelpie-entrypoint")
    if entrypoint:
        return [entrypoint]
    return [os.environ.get("KELPIE_BIN") or shutil.which("kelpie") or "kelpie"]


def setup_kelpie() -> Dict[str, Any]:
    """The jupyter-server-proxy configuration for Kelpie (a ``ServerProcess`` dict)."""
    password = secrets.token_urlsafe(32)
    credentials = base64.b64encode(f"{PROXY_USER}:{password}".encode()).decode("ascii")
    return {
        "command": launcher_command()
        + [
            "--listen",
            "127.0.0.1:{port}",
            "--base-path",
            "{base_url}" + NAME + "/",
            "--auth",
            "basic",
            "--basic-user",
            PROXY_USER,
        ],
        "environment": {
            "KELPIE_BASIC_PASSWORD": password,
        },
        "request_headers_override": {
            "Authorization": "Basic " + credentials,
        },
        "absolute_url": False,
        "timeout": 30,
        # Its own browser tab, as jupyter-server-proxy and jupyter-remote-desktop-proxy do
        # by default: JupyterLab's iframe sandbox has no allow-pointer-lock and its frame
        # grants no clipboard, fullscreen or microphone, so a desktop inside a Lab tab
        # could not lock the pointer for games and CAD, go fullscreen, or paste.
        "new_browser_tab": True,
        "launcher_entry": {
            "enabled": True,
            "title": "Desktop (Kelpie)",
            "icon_path": icon_path(),
            "category": "Notebook",
        },
    }
