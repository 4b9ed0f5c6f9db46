#!/usr/bin/env bash
# Train streaming (LC-BLSTM, log-mel) acoustic models on a lent GPU, within a time budget, from a pack made by
# recipes/pack_opus.py (the GPU machine's working tree is size-limited):
#   A: the shipped streaming model fine-tuned (3 x 256, 4.2 M parameters)
#   B: a larger one from scratch (4 x 288, 7.2 M parameters), side by side with A
# chunks of 21 steps + 11 of look-ahead in training and dev selection (lowest CER on the pack's held-out
# speakers). Each run's best.pt (fp16) and log go to $OUT (default exp/gpu_out). Runs stop at BUDGET_S
# seconds; rerunning with the same EXP folders resumes them.
#   python recipes/pack_opus.py --out gpu_pack --level 0.97 --dev-speakers so762=10 \
#     --manifest so762=../shared/data/speechocean762/manifest_train.tsv --manifest lj=exp/gpu/lj_train.tsv
#   PACK=gpu_pack BUDGET_S=240 recipes/train_gpu.sh        # on the GPU machine (DEVICE=cpu THREADS=2 for a dry run)
# Options: RUNS="a" (only A), EXTRA="gpu_pack/synth.tsv" (more training manifests, e.g. synthetic voices packed
# with pack_opus.py), LR_A (A's peak LR, default 1e-3), AMP=bf16|fp16 (mixed precision, default off).
# models/stream v3 (session 4): RUNS=a EXTRA=gpu_pack/synth.tsv LR_A=5e-4 AMP=bf16 BUDGET_S=150.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
PACK=${PACK:-gpu_pack}
BUDGET_S=${BUDGET_S:-240}
OUT=${OUT:-exp/gpu_out}
RUNS=${RUNS:-a b}
mkdir -p "$OUT"
# shellcheck disable=SC2206  # EXTRA is a list of paths
common=(--train "$PACK/so762.tsv" "$PACK/lj.tsv" ${EXTRA:-} --dev "$PACK/so762_dev.tsv" --device "${DEVICE:-cuda}"
        --threads "${THREADS:-8}" --max-frames 40000 --chunk 21 --lookahead 11 --epochs 400 --amp "${AMP:-off}")
for run in $RUNS; do
  case $run in
    a) args=(--init models/stream/model.pt --peak-lr "${LR_A:-1e-3}" --warmup-steps 100) ;;
    b) args=(--hidden 288 --layers 4 --peak-lr 2e-3 --warmup-steps 200) ;;
    *) echo "train_gpu: unknown run $run (a or b)"; exit 2 ;;
  esac
  timeout "$BUDGET_S" "$PY" -m acoustic.train "${common[@]}" --exp "exp/gpu_$run" "${args[@]}" > "$OUT/$run.log" 2>&1 &
done
wait
for run in $RUNS; do
  [ -f "exp/gpu_$run/best.pt" ] && cp "exp/gpu_$run/best.pt" "$OUT/${run}_best.pt"
  grep -a "epoch .* loss\|train:\|model:\|Error\|error" "$OUT/$run.log" | tail -5
done
