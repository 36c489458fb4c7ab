#!/usr/bin/env bash
# Create .venv with the pinned dependencies and install pamiq into it (called by make).
# On a fresh Debian/Ubuntu machine this also installs with apt what pamiq needs beside Python:
# python3-venv; libopenal1 (ViZDoom's audio buffer is silently all zeros without OpenAL);
# pulseaudio and pulseaudio-utils (audio_node records VRChat's sink through the sound server,
# finds VRChat's stream with pactl, and the tests run a private server with null sinks).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "pamiq needs Python 3.10 or newer"'
MISSING=()
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  MISSING+=("python3-venv")
fi
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libopenal\.so\.1'; then
  MISSING+=("libopenal1")
fi
command -v pulseaudio >/dev/null || MISSING+=("pulseaudio")
command -v pactl >/dev/null || MISSING+=("pulseaudio-utils")
if [ ${#MISSING[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${MISSING[*]} with apt-get" >&2
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    for package in "${MISSING[@]}"; do
      if [ "$package" = python3-venv ]; then
        $SUDO apt-get install -y -qq python3-venv || $SUDO apt-get install -y -qq "python3.$("$PYTHON" -c 'import sys; print(sys.version_info[1])')-venv"
      else
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$package"
      fi
    done
  else
    echo "bootstrap: missing ${MISSING[*]} and no apt-get to install them" >&2
  fi
fi
# The tests of several hosts (tests/test_multihost.py) make network namespaces with ip, bridge and
# tc (iproute2). As root, as CI runs, install it when missing; without it those tests skip, saying so.
if [ "$(id -u)" = 0 ] && ! command -v tc >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "bootstrap: iproute2 is missing; installing it with apt-get (tests of several hosts)" >&2
  { apt-get update -qq && apt-get install -y -qq iproute2; } \
    || echo "bootstrap: could not install iproute2: the tests of several hosts will skip" >&2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation --force-reinstall ./ros2_ws/src/pamiq
echo "bootstrap: .venv ready ($(.venv/bin/python -c 'import pamiq, rclpy, torch; print("pamiq", pamiq.__version__, "torch", torch.__version__)'))"
