#!/usr/bin/env bash
# Installs the Debian packages Kelpie needs, and only the missing ones.
#   install-deps.sh build   GStreamer + X development files, to compile
#   install-deps.sh run     build + Xvfb, PulseAudio and a light XFCE desktop, to stream
#   install-deps.sh test    build + Xvfb, PulseAudio, xterm, Chromium, Firefox ESR, WebKitGTK, Node.js, jstest and SDL2, to run every test
set -euo pipefail

profile="${1:-run}"
build=(pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
       gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
       gstreamer1.0-plugins-ugly gstreamer1.0-nice gstreamer1.0-x gstreamer1.0-libav)
x=(xvfb x11-utils xauth)
sound=(pulseaudio pulseaudio-utils)
case "$profile" in
  build) want=("${build[@]}") ;;
  run)   want=("${build[@]}" "${x[@]}" "${sound[@]}" xterm dbus-x11 xfce4-session xfwm4 xfce4-panel xfdesktop4 xfce4-terminal
                thunar xfce4-settings adwaita-icon-theme fonts-dejavu-core) ;;
  test)  want=("${build[@]}" "${x[@]}" "${sound[@]}" x11-xserver-utils xterm xdotool xclip chromium firefox-esr webkit2gtk-driver nodejs npm fonts-dejavu-core
                iproute2 iptables openssl joystick libsdl2-dev) ;;
  *) echo "usage: $0 build|run|test" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  # npm and nodejs may come from elsewhere (nodesource, nvm): a working command is enough.
  case "$p" in nodejs) command -v node >/dev/null && continue ;; npm) command -v npm >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "kelpie: installing Debian packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "kelpie: not root and no sudo; install these packages yourself: ${missing[*]}" >&2; exit 1
  fi
else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"

if ! command -v cargo >/dev/null; then
  echo "kelpie: Rust (cargo) is not installed: see https://rustup.rs" >&2
  exit 1
fi
