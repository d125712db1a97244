#!/usr/bin/env bash
# The shipped landmark network's last training step, as one re-runnable command: a whole-network
# stage-3 fine-tune of the previous shipped network (quantisation-aware last epoch, so the full-int8
# file passes its fidelity gate), with that network kept as the reference for the eye corners the
# eye-state network's patches are cut at and for the validity the tracker acquires on.
#
#   EDGEAFFECT_WORK=/work/shared-work scripts/train_landmarks_recipe.sh PREVIOUS_ONNX OUT_DIR [THREADS]
#
# PREVIOUS_ONNX: the previous shipped models/landmarks/landmarks.onnx (for the network shipped with this
# script: git show 9e53973:models/landmarks/landmarks.onnx > prev.onnx; nothing here writes into the repo). Needs the teacher cache (python -m training.label_teachers).
# Writes OUT_DIR/{landmarks.onnx, train_metrics.json, state/}; resumable (checkpoints in OUT_DIR/state).
# About 25 min with 2 threads on a 2-core x86_64 VM (AVX-512); torch on CPU is not bit-exact across machines/threads.
# Then, to ship: cp OUT_DIR/landmarks.onnx models/landmarks/ && cp OUT_DIR/train_metrics.json models/landmarks/
# && python scripts/build_models.py --only landmarks (int8 + fidelity gate; installs only a passing file).
set -euo pipefail
PREV=${1:?previous landmarks ONNX}
OUT=${2:?output directory}
THREADS=${3:-2}
PY=${PYTHON:-python}
FLAGS_POINTS="--no-eyes --eyes 10 --qat 2 --steps 500 --lr 1e-3 --qat-lr 1e-4 --tight-p 0.5 --jaw-weight 1.5 \
  --dark-p 0.2 --qat-dark-p 0.3 --consistency 50 --range-penalty 5 --wide-p 0.5 --anchor-validity 1 --anchor-corners 50"
# shellcheck disable=SC2086
# the reference network of --anchor-validity/--anchor-corners defaults to --init-onnx (the previous network)
$PY -m training.train_landmarks --threads "$THREADS" $FLAGS_POINTS --init-onnx "$PREV" --out "$OUT"
