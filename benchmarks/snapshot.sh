#!/usr/bin/env bash
# The committed results snapshot (benchmarks/results/): e2e + per-module + side by side vs MediaPipe,
# one report with the device fingerprint. Run it on a QUIET machine (1-min load average < 0.5):
#
#     benchmarks/snapshot.sh                     # label x86_64-dev, shipped models, shared clip
#     LABEL=rpi5-8gb VIDEO=/path/clip.mp4 benchmarks/snapshot.sh
#
# Takes ~3 minutes (e2e: >= 1024 frames and >= 60 s; modules: 1 and 2 threads; MediaPipe: 3 rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
VIDEO="${VIDEO:-../shared/data/video/short_hamilton_clip.mp4}"
LABEL="${LABEL:-$(uname -m)-dev}"
OUT="${OUT:-benchmarks/results}"
PY="${PY:-python}"
MAX_LOAD="${MAX_LOAD:-0.5}"
load="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)"
if awk "BEGIN{exit !($load >= $MAX_LOAD)}"; then
    if [ "${FORCE:-0}" != 1 ]; then
        echo "snapshot: load average $load >= $MAX_LOAD: other work would distort the numbers; wait, or FORCE=1 (the report records the load)" >&2
        exit 2
    fi
fi
exec "$PY" -m edgeaffect.cli bench e2e --source "$VIDEO" --label "$LABEL" --out "$OUT" \
    --with-modules --mod-threads-list 1,2 --vs-mediapipe --mp-rounds 3 "$@"
