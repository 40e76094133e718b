#!/bin/bash
# containers/tests/gpu-check.sh: the short prepared check for a machine with an NVIDIA GPU
# (issue 15). Run it where a GPU is visible, with a built kelpie; it prints one report and
# exits 0 whatever it finds (it records, it does not judge), 2 on wrong usage.
#
#   bash containers/tests/gpu-check.sh [KELPIE_BINARY] [SECONDS]
#
# What it reports, each under its own heading:
#   - the GPU (nvidia-smi -L), its device nodes, the Vulkan ICD and EGL vendor manifests;
#   - which of GStreamer's CUDA and NVENC elements register (cudaupload, cudaconvert,
#     nvcudah264enc, nvh264enc);
#   - Kelpie's own decisions, from its log: the GPU facts it read, the session's OpenGL
#     path (zink over NVIDIA's Vulkan, or llvmpipe) and why, and the encoder it chose and
#     why (an H100/H200 has no NVENC: it should say so and fall back to x264);
#   - glxinfo -B and eglinfo -B run *inside* the embedded session, i.e. with the
#     environment Kelpie gives the desktop's apps: the renderer line should name zink and
#     the NVIDIA device when the GPU path is taken.
# Kelpie runs on loopback (a free port), with its own Xvfb, for SECONDS (default 15), and
# is stopped by PID. Nothing is installed or downloaded.
set -uo pipefail

kelpie=${1:-target/release/kelpie}
seconds=${2:-15}
case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [KELPIE_BINARY] [SECONDS]" >&2; exit 2 ;; esac
[ -x "$kelpie" ] || { echo "gpu-check: no kelpie binary at $kelpie (cargo build --release -p kelpie)" >&2; exit 2; }

section() { printf '\n== %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

section "machine"
uname -srm
date -u +%FT%TZ

section "nvidia-smi -L"
if have nvidia-smi; then nvidia-smi -L 2>&1; else echo "(nvidia-smi not installed)"; fi

section "device nodes"
ls -l /dev/nvidiactl /dev/nvidia0 /dev/dri 2>&1

section "Vulkan ICD manifests"
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1

section "EGL vendor manifests"
ls /usr/share/glvnd/egl_vendor.d /etc/glvnd/egl_vendor.d 2>&1

section "GStreamer CUDA and NVENC elements"
if have gst-inspect-1.0; then
  for e in cudaupload cudaconvert nvcudah264enc nvh264enc; do
    if gst-inspect-1.0 "$e" >/dev/null 2>&1; then echo "$e: registered"; else echo "$e: not registered"; fi
  done
else
  echo "(gst-inspect-1.0 not installed)"
fi

work=$(mktemp -d)
pid=
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The session writes what its apps see, then idles until Kelpie stops it.
cat >"$work/session.sh" <<EOF
#!/bin/sh
{ echo "DISPLAY=\$DISPLAY"; env | grep -E '^(MESA_|GALLIUM_|__GLX_|__EGL_|VK_|LIBGL_)' | sort; } >"$work/session-env.txt" 2>&1
if command -v glxinfo >/dev/null; then glxinfo -B >"$work/glxinfo.txt" 2>&1; else echo "(glxinfo not installed: mesa-utils)" >"$work/glxinfo.txt"; fi
if command -v eglinfo >/dev/null; then eglinfo -B >"$work/eglinfo.txt" 2>&1; else echo "(eglinfo not installed: mesa-utils)" >"$work/eglinfo.txt"; fi
touch "$work/session-done"
exec sleep 600
EOF
chmod +x "$work/session.sh"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18111)
section "kelpie (--gl auto --encoder auto, ${seconds} s on 127.0.0.1:$port)"
KELPIE_LOG=info "$kelpie" --listen "127.0.0.1:$port" --size 1280x720 --framerate 30 \
  --session "$work/session.sh" >"$work/kelpie.out" 2>"$work/kelpie.log" &
pid=$!
for _ in $(seq 1 "$seconds"); do
  [ -e "$work/session-done" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
if kill -0 "$pid" 2>/dev/null; then
  echo "(kelpie was running; stopped by PID)"
else
  wait "$pid"
  echo "(kelpie exited by itself with status $?)"
fi
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=

section "kelpie's decisions (log lines on GPU, OpenGL, encoder, errors)"
grep -E 'GPU|OpenGL|encoder|NVENC|nvh264|VA-API|zink|llvmpipe|ERROR|WARN' "$work/kelpie.log" | sed -E 's/^[0-9T:.-]+Z +//' | head -40
[ -s "$work/kelpie.log" ] || echo "(kelpie wrote no log)"

section "the session's GL environment"
cat "$work/session-env.txt" 2>/dev/null || echo "(the session did not run)"
section "glxinfo -B inside the session"
cat "$work/glxinfo.txt" 2>/dev/null || echo "(the session did not run)"
section "eglinfo -B inside the session"
head -60 "$work/eglinfo.txt" 2>/dev/null || echo "(the session did not run)"
exit 0
