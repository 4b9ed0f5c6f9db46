#!/usr/bin/env bash
# One call on a machine with a CUDA GPU (at most 8 minutes, about 4 expected): the CUDA tests, then the streaming benchmark on the
# GPU (speed only, on clips of the bundled sample meeting: no data sets needed there), with the card's name and
# the date. Results go to stdout and, when $OUT is set, to $OUT/device_check.log and $OUT/stream_*.json.
#   bench/device_check.sh            # PYTHON=... to pick the interpreter (default: .venv/bin/python or python3)
# Packages the GPU machine lacks (soundfile and its cffi) can come as wheels in .whl/, fetched where pip works:
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl soundfile==0.14.0 cffi pycparser
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT=${OUT:-}
LOG=${OUT:+$OUT/device_check.log}
exec > >(tee ${LOG:+"$LOG"}) 2>&1
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0 PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null && ! "$PY" -c "import soundfile" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not available"
"$PY" -c "import torch, torchaudio; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" || { echo "torch/torchaudio missing"; exit 2; }
json() { echo ${OUT:+--json "$OUT/stream_$1.json"}; }
bench() { local limit=$1; shift; timeout "$limit" "$PY" -m bench.stream --audio samples/meeting.opus --device cuda \
  --threads 2 --ticks 8 "$@"; echo "bench.stream: exit $?"; }
# 1. the CUDA tests and the rest of the streaming tests (quick); the Whisper encoder (CPU only) is left out
timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_streaming.py tests/test_lockstep.py \
  tests/test_batched_beam.py -rs -k "not encoder"
# 2. what the app uses (StreamingEngine: per-stream decoding in Python), as on the CPU
bench 80 --engine per-stream --streams 1,16,64,256 --beam-streams 1,16,64 --offline-clips 64 --beam-clips 16 $(json per_stream)
# 3. the serving path (LockstepServer: batched decoders on the GPU), float16, up to many streams (20 measured ticks
#    per row); offline batched
bench 240 --engine lock-step --half --ticks 20 --streams 1,256,1024,4096,16384,20000,32768,65536 \
  --beam-streams 256,1024,2048,4096 --offline-clips 4096 --offline-batch 512 --beam-clips 16 --agreement $(json lockstep_half)
# 4. the same in float32, fewer sizes
bench 60 --engine lock-step --streams 4096,16384 --beam-streams 2048 --offline-clips 2048 --offline-batch 512 --beam-clips 16 \
  $(json lockstep_fp32)
# 5. training speed per precision (acoustic.train --amp): float32/TF32, bfloat16, float16 with loss scaling
timeout 90 "$PY" -m bench.train_speed --device cuda --batch 64 --seconds 15 --steps 30; echo "bench.train_speed: exit $?"
echo "device_check: done"
