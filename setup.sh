#!/usr/bin/env bash
# Set up kinpoly on a fresh Debian/Ubuntu machine: EGL libraries for headless MuJoCo
# rendering (when run as root or with sudo), a virtual environment in .venv, and the package
# with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
EGL_PACKAGES="libegl1 libegl-mesa0 libgl1-mesa-dri libgles2"
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    if ! dpkg -s $EGL_PACKAGES >/dev/null 2>&1; then
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $EGL_PACKAGES >/dev/null
    fi
  else
    echo "note: not root; install for rendering: apt-get install $EGL_PACKAGES" >&2
  fi
fi
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# the reader of Project Aria .vrs recordings (the 'aria' extra), for its tests: only its core
# bindings are used, so not its notebook and plotting dependencies
.venv/bin/python -m pip install -q --no-deps 'projectaria-tools>=1.5' \
  || echo "note: projectaria-tools not installed; the .vrs tests will be skipped" >&2
# structure from motion for videos without a trajectory (the 'reconstruct' extra)
.venv/bin/python -m pip install -q 'pycolmap>=3.11' \
  || echo "note: pycolmap not installed; the reconstruction tests will be skipped" >&2
echo "kinpoly installed in $(pwd)/.venv  (activate: source .venv/bin/activate)"
