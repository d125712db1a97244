#!/usr/bin/env bash
# aarch64 proof: run edgeaffect under an emulated aarch64 CPython and compare with x86_64.
#
#   scripts/aarch64_proof.sh [setup|run SCRIPT [ARGS...]|proof|pipeline|all [--report FILE]]   (default: proof)
#
#   setup     build $DIR: an arm64 Debian bookworm minbase rootfs with python3.11 and the
#             runtime wheels (ai-edge-litert 2.1.0, numpy<2, opencv-python-headless) for
#             manylinux_2_28_aarch64 in $DIR/site. Idempotent (a cached root is reused).
#   run       run a python script (or -m module) under qemu-aarch64-static -cpu $CPU with
#             PYTHONPATH=<repo>:<site>.
#   proof     setup, then scripts/aarch64/run_models.py on x86 and on aarch64, then
#             scripts/aarch64/compare.py (int8 networks bit-identical, float16 / dynamic-range
#             ones within a stated tolerance; exit 1 otherwise), on seeded random inputs
#             and, when $CLIP is present, on real inputs recorded from the pipeline on its
#             first frames (scripts/aarch64/record_inputs.py). Extra args go to run_models.py. Without edgeaffect/models/assets/*.tflite it uses int8 probe
#             models built by scripts/aarch64/make_probe_model.py (needs tensorflow).
#   pipeline  the whole pipeline: `edgeaffect run` on a lossless FFV1 cut of the first
#             $PIPE_FRAMES frames of $CLIP (decoded once on x86), on x86_64 and under qemu for
#             each CPU in $PIPE_CPUS (in parallel), then scripts/aarch64/compare_pipeline.py
#             (same faces and valid faces per frame, landmarks <= 1 px, AUs <= 0.05,
#             V/A <= 0.02; exit 1 otherwise). Skipped with a message when $CLIP is absent.
#   all       proof for each CPU in $PIPE_CPUS, then pipeline; with --report FILE also
#             writes one JSON report (what README's aarch64 paragraph is generated from).
#
# How the rootfs is built (works without binfmt_misc or chroot, which sandboxes often lack):
#   debootstrap --arch=arm64 --foreign --variant=minbase --include=python3.11 bookworm ROOT
# The first (foreign) stage only *extracts* the essential packages; python3.11 and its
# dependencies are downloaded to ROOT/var/cache/apt/archives but not unpacked, and the second
# stage would need to execute arm64 binaries in a chroot. We unpack those .debs with
# `dpkg-deb -x` instead; no maintainer scripts are needed to run python3.11 from -L ROOT.
#
# Why -cpu cortex-a72: it is the Pi 4's core; qemu's default `-cpu max` was seen to give
# wrong dynamic-range results (../shared/DESIGN.md section 3). ai-edge-litert 2.2/2.3 crash
# under qemu 7.2, hence the 2.1.0 pin (same pin as pyproject.toml).
#
# Environment: EDGEAFFECT_AARCH64_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/edgeaffect-aarch64:
# outside the checkout, so CI's clean clones reuse it), DEBIAN_MIRROR, PYTHON (host python
# with the runtime installed; default: the active python3), EDGEAFFECT_AARCH64_CPU (default
# cortex-a72), PIPE_CPUS (default "cortex-a72 cortex-a76": Pi 4 and Pi 5), REQUIRED_CPUS (the CPUs
# whose network and pipeline comparisons decide the exit status; default: all of PIPE_CPUS), PIPE_FRAMES (100: the speaker far away, the close-up profile that must stay unlisted on both ISAs, the speaker on stage),
# CLIP (default <repo>/../shared/data/video/short_hamilton_clip.mp4).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${EDGEAFFECT_AARCH64_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edgeaffect-aarch64}"
PIPE_CPUS="${PIPE_CPUS:-cortex-a72 cortex-a76}"
PIPE_FRAMES="${PIPE_FRAMES:-100}"
REQUIRED_CPUS="${REQUIRED_CPUS:-$PIPE_CPUS}"
CLIP="${CLIP:-$REPO/../shared/data/video/short_hamilton_clip.mp4}"
ROOT="$DIR/rootfs"
SITE="$DIR/site"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CPU="${EDGEAFFECT_AARCH64_CPU:-cortex-a72}"
PYTHON="${PYTHON:-python3}"
WHEELS=("ai-edge-litert==2.1.0" "numpy>=1.24,<2" "opencv-python-headless>=4.8,<5")

log() { echo "[aarch64] $*" >&2; }
die() { echo "[aarch64] ERROR: $*" >&2; exit 2; }

qemu_bin() {
  command -v qemu-aarch64-static || command -v qemu-aarch64 || die "qemu-aarch64-static not found: apt-get install qemu-user-static"
}

setup_rootfs() {
  if [[ -x "$ROOT/usr/bin/python3.11" && -f "$ROOT/.edgeaffect-extracted" ]]; then
    log "rootfs present: $ROOT"
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
  command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
  [[ "$(id -u)" == 0 ]] || die "debootstrap needs root (it creates device nodes and sets ownership)"
  mkdir -p "$DIR"
  if [[ ! -f "$ROOT/debootstrap/debootstrap" && ! -f "$ROOT/.edgeaffect-stage1" ]]; then
    rm -rf "$ROOT"
    log "debootstrap first stage (arm64, bookworm, minbase, +python3.11) from $MIRROR"
    debootstrap --arch=arm64 --foreign --variant=minbase --include=python3.11 bookworm "$ROOT" "$MIRROR" \
      >"$DIR/debootstrap.log" 2>&1 || { tail -20 "$DIR/debootstrap.log" >&2; die "debootstrap failed (log: $DIR/debootstrap.log)"; }
    touch "$ROOT/.edgeaffect-stage1"
  fi
  log "unpacking the downloaded .debs with dpkg-deb -x (instead of the chroot second stage)"
  local n=0
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do
    dpkg-deb -x "$deb" "$ROOT"
    n=$((n + 1))
  done
  log "unpacked $n packages"
  [[ -x "$ROOT/usr/bin/python3.11" ]] || die "python3.11 not in the rootfs after unpacking (see $DIR/debootstrap.log)"
  touch "$ROOT/.edgeaffect-extracted"
}

setup_site() {
  if [[ -f "$SITE/.edgeaffect-ok" ]]; then
    log "aarch64 wheels present: $SITE"
    return
  fi
  rm -rf "$SITE"
  log "pip install --target $SITE --platform manylinux_2_28_aarch64 ${WHEELS[*]}"
  # Recent pip does not expand --platform to older manylinux tags: list the ones the wheels use
  # (ai-edge-litert 2.1.0 is manylinux_2_27, numpy 1.26 manylinux_2_17; bookworm has glibc 2.36).
  local plats=()
  for p in manylinux_2_28_aarch64 manylinux_2_27_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64; do
    plats+=(--platform "$p")
  done
  "$PYTHON" -m pip install -q --target "$SITE" "${plats[@]}" --python-version 3.11 \
    --implementation cp --only-binary=:all: "${WHEELS[@]}" >"$DIR/pip.log" 2>&1 \
    || { tail -20 "$DIR/pip.log" >&2; die "pip could not fetch the aarch64 wheels (log: $DIR/pip.log)"; }
  touch "$SITE/.edgeaffect-ok"
}

run_aarch64() {
  local q
  q="$(qemu_bin)"
  [[ -x "$ROOT/usr/bin/python3.11" ]] || die "no aarch64 rootfs at $ROOT: run '$0 setup' first"
  [[ -f "$SITE/.edgeaffect-ok" ]] || die "no aarch64 wheels at $SITE: run '$0 setup' first"
  # -L makes qemu resolve the ELF interpreter and absolute library paths inside ROOT.
  PYTHONPATH="$REPO:$SITE" PYTHONHOME="$ROOT/usr" PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 \
    "$q" -cpu "$CPU" -L "$ROOT" "$ROOT/usr/bin/python3.11" "$@"
}

proof() {
  setup_rootfs
  setup_site
  local out="$DIR/out"
  mkdir -p "$out"
  local args=("$@")
  if [[ ${#args[@]} -eq 0 ]] && ! compgen -G "$REPO/edgeaffect/models/assets/*.tflite" >/dev/null; then
    # No shipped models yet: use seeded full-int8 probe models with the same op mix.
    if ! compgen -G "$DIR/probe/*.tflite" >/dev/null; then
      log "no edgeaffect/models/assets/*.tflite: building int8 probe models (needs tensorflow in $PYTHON)"
      "$PYTHON" "$REPO/scripts/aarch64/make_probe_model.py" "$DIR/probe" >"$DIR/probe.log" 2>&1 \
        || log "could not build probe models (see $DIR/probe.log); comparing the vision path only"
    fi
    if compgen -G "$DIR/probe/*.tflite" >/dev/null; then
      args=(--models "$DIR"/probe/*.tflite)
    fi
  fi
  if [[ -f "$CLIP" ]] && [[ " ${args[*]-} " != *" --real-inputs "* ]]; then
    # real inputs too: the crops, windows and frames the pipeline feeds the networks on the shared clip
    PYTHONPATH="$REPO" "$PYTHON" "$REPO/scripts/aarch64/make_cut.py" "$CLIP" "$out/cut.mkv" --frames "$PIPE_FRAMES" >/dev/null
    PYTHONPATH="$REPO" "$PYTHON" "$REPO/scripts/aarch64/record_inputs.py" "$out/cut.mkv" "$out/real_inputs.npz" 2>/dev/null
    args+=(--real-inputs "$out/real_inputs.npz")
  fi
  log "x86_64 run"
  PYTHONPATH="$REPO" "$PYTHON" "$REPO/scripts/aarch64/run_models.py" --out "$out/x86_64.npz" "${args[@]}"
  log "aarch64 run (qemu -cpu $CPU; slow: emulated)"
  local t0=$SECONDS
  run_aarch64 "$REPO/scripts/aarch64/run_models.py" --out "$out/aarch64.npz" "${args[@]}"
  log "aarch64 run took $((SECONDS - t0)) s"
  PYTHONPATH="$REPO" "$PYTHON" "$REPO/scripts/aarch64/compare.py" "$out/x86_64.npz" "$out/aarch64.npz" --json "$out/models-$CPU.json"
}

pipeline() {
  setup_rootfs
  setup_site
  local out="$DIR/out/pipeline"
  if [[ ! -f "$CLIP" ]]; then
    echo "pipeline: SKIPPED: $CLIP not present (the cross-ISA pipeline check needs the shared clip)"
    return 0
  fi
  rm -rf "$out"
  mkdir -p "$out"
  PYTHONPATH="$REPO" "$PYTHON" "$REPO/scripts/aarch64/make_cut.py" "$CLIP" "$out/cut.mkv" --frames "$PIPE_FRAMES"
  log "x86_64 edgeaffect run"
  PYTHONPATH="$REPO" "$PYTHON" -m edgeaffect.cli run --source "$out/cut.mkv" --out "$out/x86_64" --no-csv -q >"$out/x86_64.log" 2>&1 \
    || { tail -20 "$out/x86_64.log" >&2; die "x86_64 run failed"; }
  local pids=() cpu t0=$SECONDS
  for cpu in $PIPE_CPUS; do
    log "aarch64 edgeaffect run (qemu -cpu $cpu; emulated, in parallel)"
    ( CPU="$cpu" run_aarch64 -m edgeaffect.cli run --source "$out/cut.mkv" --out "$out/$cpu" --no-csv -q >"$out/$cpu.log" 2>&1; echo $? >"$out/$cpu.rc" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  log "aarch64 runs took $((SECONDS - t0)) s"
  local rc=0
  for cpu in $PIPE_CPUS; do
    if [[ "$(cat "$out/$cpu.rc")" != 0 ]]; then
      tail -20 "$out/$cpu.log" >&2
      echo "pipeline x86_64 vs aarch64 $cpu: the aarch64 run failed -> FAIL"
      rc=1
      continue
    fi
    if ! "$PYTHON" "$REPO/scripts/aarch64/compare_pipeline.py" "$out/x86_64/results.jsonl" "$out/$cpu/results.jsonl" \
      --label "$cpu" --json "$out/pipeline-$cpu.json"; then
      if [[ " $REQUIRED_CPUS " == *" $cpu "* ]]; then rc=1; else echo "  ($cpu is reported, not required: REQUIRED_CPUS=\"$REQUIRED_CPUS\")"; fi
    fi
  done
  return $rc
}

all() {
  local report=""
  if [[ "${1:-}" == "--report" ]]; then report="$2"; fi
  local rc=0 t0=$SECONDS cpu
  rm -f "$DIR"/out/models-*.json
  for cpu in $PIPE_CPUS; do
    if ! CPU="$cpu" proof; then
      if [[ " $REQUIRED_CPUS " == *" $cpu "* ]]; then rc=1; else echo "  ($cpu is reported, not required: REQUIRED_CPUS=\"$REQUIRED_CPUS\")"; fi
    fi
  done
  local t1=$SECONDS
  pipeline || rc=1
  log "cross-ISA check took $((SECONDS - t0)) s (models $((t1 - t0)) s, pipeline $((SECONDS - t1)) s)"
  if [[ -n "$report" ]]; then
    "$PYTHON" - "$DIR/out" "$report" "$((t1 - t0))" "$((SECONDS - t1))" "$PIPE_CPUS" "$REQUIRED_CPUS" <<'PY'
import json, os, platform, subprocess, sys
out, report, t_models, t_pipe, cpus, required = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(), sys.argv[6].split()
def load(p):
    return json.load(open(p)) if os.path.exists(p) else None
qemu = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
prefix = "" if required == cpus else f"REQUIRED_CPUS=\"{' '.join(required)}\" "
r = {"command": prefix + "scripts/aarch64_proof.sh all --report " + report, "host": platform.machine(), "qemu": qemu[0] if qemu else None,
     "cpus": cpus, "required_cpus": required, "pipeline_required": required, "seconds": {"models": t_models, "pipeline": t_pipe},
     "models": {c: load(f"{out}/models-{c}.json") for c in cpus},
     "pipeline": {c: load(f"{out}/pipeline/pipeline-{c}.json") for c in cpus}}
json.dump(r, open(report, "w"), indent=1)
print("report:", report)
PY
  fi
  return $rc
}

cmd="${1:-proof}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  setup) setup_rootfs; setup_site; run_aarch64 -c "import platform, numpy, cv2, ai_edge_litert; print('aarch64 ok:', platform.machine(), 'numpy', numpy.__version__, 'cv2', cv2.__version__)" ;;
  run) [[ $# -ge 1 ]] || die "usage: $0 run SCRIPT [ARGS...]"; run_aarch64 "$@" ;;
  proof) proof "$@" ;;
  pipeline) pipeline ;;
  all) all "$@" ;;
  *) die "usage: $0 [setup|run SCRIPT [ARGS...]|proof [run_models.py args]|pipeline|all [--report FILE]]" ;;
esac
