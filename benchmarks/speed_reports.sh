#!/usr/bin/env bash
# Every speed report in benchmarks/results/ (the README's speed figures read them), in one go:
#
#     benchmarks/speed_reports.sh                 # shared clip, label prefix $(uname -m)
#     VIDEO=clip.mp4 PREFIX=rpi5 benchmarks/speed_reports.sh
#
# ~13 minutes. Run niced on a shared machine (NICE=10, the default); the reports record the load.
set -euo pipefail
cd "$(dirname "$0")/.."
VIDEO="${VIDEO:-../shared/data/video/short_hamilton_clip.mp4}"
PREFIX="${PREFIX:-$(uname -m)}"
OUT="${OUT:-benchmarks/results}"
N="nice -n ${NICE:-10}"
PY="${PY:-python}"; export PY   # the interpreter of the venv with edgeaffect (+ mediapipe) installed
FORCE="${FORCE:-1}" LABEL="$PREFIX-dev" OUT="$OUT" VIDEO="$VIDEO" $N benchmarks/snapshot.sh --mp-rounds 7
$N "$PY" -m edgeaffect.cli bench mediapipe --source "$VIDEO" --rounds 3 --au-every 2 --affect-every 2 \
    --label "$PREFIX-dev-au2-va2" --out "$OUT"
$N "$PY" -m edgeaffect.cli bench run-vs --source "$VIDEO" --loop --max-frames 1100 --pairs 5 --label "$PREFIX-run-vs" --out "$OUT"
$N "$PY" -m edgeaffect.cli bench sustained --source "$VIDEO" --duration 120 --interval 10 --label "$PREFIX-sustained" --out "$OUT"
$N "$PY" benchmarks/profile_frame.py --source "$VIDEO" --frames 1100 --out "$OUT/profile-$PREFIX.txt" > /dev/null
$N "$PY" benchmarks/pipeline_gain.py --source "$VIDEO" --out "$OUT/pipeline_gain.json" > /dev/null
