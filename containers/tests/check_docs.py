#!/usr/bin/env python3
"""Keeps the deployment docs and the dashboard in step with the code.

    check_docs.py settings docs/deployment.md       every KELPIE_* setting is in a table row
    check_docs.py embedded docs/deployment.md       the SLURM script shown equals the shipped one
    check_docs.py dashboard containers/grafana-dashboard.json   every metric has a panel

Settings are collected from the server's source (every "KELPIE_..." string literal, which
covers clap's env names and the secrets read from the environment), the entrypoint script,
and the configuration contract below (settings being added may not be in the source yet).
Metrics likewise come from the contract and the server's source.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONTRACT_SETTINGS = {
    "KELPIE_DISPLAY", "KELPIE_SIZE", "KELPIE_SESSION", "KELPIE_LISTEN", "KELPIE_FRAMERATE", "KELPIE_BITRATE",
    "KELPIE_ENCODER", "KELPIE_MAX_VIEWERS", "KELPIE_ALLOWED_ORIGINS", "KELPIE_ICE_ADDRESSES", "KELPIE_UDP_PORTS",
    "KELPIE_AUTH", "KELPIE_BASIC_USER", "KELPIE_BASIC_PASSWORD", "KELPIE_BASIC_PASSWORD_FILE", "KELPIE_TOKEN_SECRET",
    "KELPIE_TOKEN_SECRET_FILE", "KELPIE_TRUSTED_HEADER", "KELPIE_TRUSTED_PROXIES", "KELPIE_TLS_CERT", "KELPIE_TLS_KEY",
    "KELPIE_TURN_URLS", "KELPIE_TURN_USERNAME", "KELPIE_TURN_PASSWORD", "KELPIE_TURN_SECRET", "KELPIE_TURN_SECRET_FILE",
    "KELPIE_TURN_TTL", "KELPIE_STUN_URLS", "KELPIE_FORCE_RELAY", "KELPIE_BASE_PATH", "KELPIE_LOG",
    "KELPIE_TRANSPORT",
}
CONTRACT_METRICS = {
    "kelpie_viewers", "kelpie_frames_encoded_total", "kelpie_delivered_fps", "kelpie_bitrate_bps",
    "kelpie_encode_seconds", "kelpie_rtt_seconds", "kelpie_packets_lost_total", "kelpie_input_events_total",
    "kelpie_errors_total", "kelpie_transport_viewers", "kelpie_socket_frames_total",
}


def source_strings(pattern: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "server" / "src").rglob("*.rs"):
        found |= set(re.findall(pattern, path.read_text(encoding="utf-8", errors="replace")))
    return found


def settings(doc: Path) -> list[str]:
    wanted = CONTRACT_SETTINGS | {s for s in source_strings(r'"(KELPIE_[A-Z0-9_]+)"') if "TEST" not in s}
    wanted |= set(re.findall(r"\b(KELPIE_[A-Z0-9_]+)\b", (ROOT / "containers" / "entrypoint.sh").read_text()))
    rows = "\n".join(line for line in doc.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith("|"))
    missing = sorted(s for s in wanted if not re.search(rf"`{s}`", rows))
    return [f"{s} is not in a settings table of {doc.name}" for s in missing]


def embedded(doc: Path) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    problems = []
    for rel in ("containers/slurm/kelpie.sbatch",):
        shipped = (ROOT / rel).read_text(encoding="utf-8").rstrip("\n")
        blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
        if not any(b.rstrip("\n") == shipped for b in blocks):
            problems.append(f"{doc.name} must show {rel} verbatim in a ```bash block (copy it again after editing)")
    return problems


def dashboard(path: Path) -> list[str]:
    dash = json.loads(path.read_text(encoding="utf-8"))
    exprs = []
    problems = []
    for panel in dash.get("panels", []):
        if not panel.get("datasource"):
            problems.append(f"panel {panel.get('title')!r} has no datasource")
        for t in panel.get("targets", []):
            exprs.append(t.get("expr", ""))
    text = "\n".join(exprs)
    metrics = CONTRACT_METRICS | source_strings(r'Metric::\w+\(\s*"(kelpie_[a-z0-9_]+)"')
    for m in sorted(metrics):
        if not re.search(rf"\b{m}\b", text):
            problems.append(f"no panel queries {m}")
    used = set(re.findall(r"\b(kelpie_[a-z0-9_]+)\b", text))
    for m in sorted(used - metrics):
        problems.append(f"a panel queries {m}, which Kelpie does not export")
    ids = [p.get("id") for p in dash.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    return problems


def main(argv: list[str]) -> int:
    checks = {"settings": settings, "embedded": embedded, "dashboard": dashboard}
    if len(argv) != 2 or argv[0] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    problems = checks[argv[0]](Path(argv[1]))
    for p in problems:
        print(f"FAIL {argv[0]}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
