#!/usr/bin/env bash
# Idempotent setup: Debian's ffmpeg and libportaudio2 when missing, a .venv with the pinned stack and
# this package (editable) with its test extras. Fast when already done (a stamp tracks pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
# dpkg too: once, after apt had installed it, ldconfig's list did not show it and setup installed it again
{ ldconfig -p 2>/dev/null | grep -q libportaudio.so.2 || dpkg-query -W -f="${Status}" libportaudio2 2>/dev/null | grep -q "ok installed"; } || missing+=(libportaudio2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stamp=.venv/.minutes-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# the stack takes about 7 GB once installed: say so plainly instead of failing half-way with pip's ENOSPC
free_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
if [ -n "$free_kb" ] && [ "$free_kb" -lt $((7 * 1024 * 1024)) ] && [ ! -x .venv/bin/python ]; then
  echo "setup: about 7 GB of free disk is needed for .venv, only $((free_kb / 1024 / 1024)) GB free here" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
echo "setup: installing the Python stack into .venv (first time: about 3 minutes)"
# pip's own output goes to a log, shown only when the install fails
if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e ".[test]"; } > .venv/install.log 2>&1; then
  cat .venv/install.log >&2
  echo "setup: installing the Python stack failed (log above, also in .venv/install.log)" >&2
  exit 1
fi
echo "$want" > "$stamp"
