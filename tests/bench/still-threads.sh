#!/usr/bin/env bash
# Where a still screen's CPU goes, thread by thread: a bare 1920x1080 Xvfb (nothing
# draws), one release kelpie at 60 fps, one webrtc-rs viewer (kelpie-load), and each of
# kelpie's threads' user + system ticks over the viewer's measuring window.
#
#   bash tests/bench/still-threads.sh [SECONDS] [extra kelpie flags...]
#
# Needs `cargo build --release -p kelpie -p kelpie-tests` (make bench builds both) and
# Xvfb. Prints the total as % of one core and the busiest threads. Ticks are 10 ms, so
# use 30 s or more. Everything it starts binds to 127.0.0.1 and is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-30}
shift || true
KELPIE=${KELPIE_BIN:-target/release/kelpie}
LOAD=${KELPIE_LOAD_BIN:-target/release/kelpie-load}
for b in "$KELPIE" "$LOAD"; do
  [[ -x $b ]] || { echo "$b is missing: cargo build --release -p kelpie -p kelpie-tests" >&2; exit 2; }
done
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp 3>"$dir/display" 2>"$dir/xvfb.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s $dir/display ]] && break; sleep 0.1; done
[[ -s $dir/display ]] || { echo "Xvfb did not start: $(cat "$dir/xvfb.log")" >&2; exit 1; }
display=":$(head -1 "$dir/display")"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

DISPLAY=$display "$KELPIE" --display "$display" --listen "127.0.0.1:$port" --auth none --framerate 60 \
  --ice-address 127.0.0.1 --resize off "$@" >"$dir/kelpie.log" 2>&1 &
kpid=$!
pids+=("$kpid")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/livez" >/dev/null 2>&1 && break; sleep 0.1; done

"$LOAD" --url "ws://127.0.0.1:$port/ws" --viewers 1 --seconds "$SECS" --settle 3 >"$dir/load.log" 2>&1 &
lpid=$!
pids+=("$lpid")
snap() { for t in /proc/"$kpid"/task/*; do echo "$(basename "$t"):$(tr ' ' _ <"$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done | sort; }
wait_for() { for _ in $(seq $((SECS * 20 + 400))); do grep -q "$1" "$dir/load.log" && return 0; sleep 0.05; done; return 1; }
wait_for measure_start || { echo "the viewer did not start: $(cat "$dir/load.log")" >&2; exit 1; }
snap >"$dir/a"; a=$(awk '{print $14+$15}' /proc/"$kpid"/stat)
wait_for measure_end || { echo "the viewer did not finish: $(cat "$dir/load.log")" >&2; exit 1; }
snap >"$dir/b"; b=$(awk '{print $14+$15}' /proc/"$kpid"/stat)
hz=$(getconf CLK_TCK)
wait "$lpid" || true
echo "kelpie on a still 1080p screen, one viewer, ${SECS} s: $(awk -v d=$((b - a)) -v s="$SECS" -v hz="$hz" 'BEGIN{printf "%.2f", d*100/hz/s}') % of one core"
echo "busiest threads (% of one core):"
join "$dir/a" "$dir/b" | awk -v s="$SECS" -v hz="$hz" '{d=$3-$2; if (d>0) printf "  %6.2f  %s\n", d*100/hz/s, $1}' | sort -rn | head -15
echo "viewer: $(tail -1 "$dir/load.log" | cut -c1-160)"
