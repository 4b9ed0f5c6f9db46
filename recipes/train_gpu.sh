#!/usr/bin/env bash
# Train two streaming (LC-BLSTM, log-mel) acoustic models side by side on a lent GPU, within a time budget,
# from a pack made by recipes/pack_opus.py (the GPU machine's working tree is size-limited):
#   A: the shipped streaming model fine-tuned (3 x 256, 4.2 M parameters)
#   B: a larger one from scratch (4 x 288, 7.2 M parameters)
# chunks of 21 steps + 11 of look-ahead in training and dev selection (lowest CER on the pack's held-out
# speakers). Each run's best.pt (fp16) and log go to $OUT (default exp/gpu_out). Runs stop at BUDGET_S
# seconds; rerunning with the same EXP folders resumes them.
#   python recipes/pack_opus.py --out gpu_pack --level 0.97 --dev-speakers so762=10 \
#     --manifest so762=../shared/data/speechocean762/manifest_train.tsv --manifest lj=exp/gpu/lj_train.tsv
#   PACK=gpu_pack BUDGET_S=240 recipes/train_gpu.sh        # on the GPU machine (DEVICE=cpu THREADS=2 for a dry run)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
PACK=${PACK:-gpu_pack}
BUDGET_S=${BUDGET_S:-240}
OUT=${OUT:-exp/gpu_out}
mkdir -p "$OUT"
common=(--train "$PACK/so762.tsv" "$PACK/lj.tsv" --dev "$PACK/so762_dev.tsv" --device "${DEVICE:-cuda}" --threads "${THREADS:-8}"
        --max-frames 40000 --chunk 21 --lookahead 11 --epochs 400)
timeout "$BUDGET_S" "$PY" -m acoustic.train "${common[@]}" --exp exp/gpu_a --init models/stream/model.pt \
  --peak-lr 1e-3 --warmup-steps 100 > "$OUT/a.log" 2>&1 &
timeout "$BUDGET_S" "$PY" -m acoustic.train "${common[@]}" --exp exp/gpu_b --hidden 288 --layers 4 \
  --peak-lr 2e-3 --warmup-steps 200 > "$OUT/b.log" 2>&1 &
wait
for run in a b; do
  [ -f "exp/gpu_$run/best.pt" ] && cp "exp/gpu_$run/best.pt" "$OUT/${run}_best.pt"
  grep -a "epoch .* loss\|train:\|model:\|Error\|error" "$OUT/$run.log" | tail -5
done
