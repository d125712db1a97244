#!/usr/bin/env bash
# aarch64 proof: run edgeaffect's int8 models under an emulated aarch64 CPython and compare
# the outputs with x86_64 bit for bit.
#
#   scripts/aarch64_proof.sh [setup|run SCRIPT [ARGS...]|proof]     (default: proof)
#
#   setup  build work/aarch64/: an arm64 Debian bookworm minbase rootfs with python3.11 and
#          the runtime wheels (ai-edge-litert 2.1.0, numpy<2, opencv-python-headless) for
#          manylinux_2_28_aarch64 in work/aarch64/site. Idempotent.
#   run    run a python script under qemu-aarch64-static -cpu cortex-a72 with
#          PYTHONPATH=<repo>:<site>.
#   proof  setup, then scripts/aarch64/run_models.py on x86 and on aarch64, then compare
#          (extra args go to run_models.py, e.g. --models a.tflite b.tflite). Without
#          edgeaffect/models/assets/*.tflite it uses int8 probe models built by
#          scripts/aarch64/make_probe_model.py (needs tensorflow, dev env only).
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
# Environment: EDGEAFFECT_AARCH64_DIR (default <repo>/work/aarch64), DEBIAN_MIRROR,
# PYTHON (host python with the runtime installed; default /work/venvs/dev/bin/python or python3),
# EDGEAFFECT_AARCH64_CPU (default cortex-a72).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${EDGEAFFECT_AARCH64_DIR:-$REPO/work/aarch64}"
ROOT="$DIR/rootfs"
SITE="$DIR/site"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CPU="${EDGEAFFECT_AARCH64_CPU:-cortex-a72}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /work/venvs/dev/bin/python ]]; then PYTHON=/work/venvs/dev/bin/python; else PYTHON=python3; fi
fi
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
  log "x86_64 run"
  PYTHONPATH="$REPO" "$PYTHON" "$REPO/scripts/aarch64/run_models.py" --out "$out/x86_64.npz" "${args[@]}"
  log "aarch64 run (qemu -cpu $CPU; slow: emulated)"
  local t0=$SECONDS
  run_aarch64 "$REPO/scripts/aarch64/run_models.py" --out "$out/aarch64.npz" "${args[@]}"
  log "aarch64 run took $((SECONDS - t0)) s"
  PYTHONPATH="$REPO" "$PYTHON" "$REPO/scripts/aarch64/compare.py" "$out/x86_64.npz" "$out/aarch64.npz"
}

cmd="${1:-proof}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  setup) setup_rootfs; setup_site; run_aarch64 -c "import platform, numpy, cv2, ai_edge_litert; print('aarch64 ok:', platform.machine(), 'numpy', numpy.__version__, 'cv2', cv2.__version__)" ;;
  run) [[ $# -ge 1 ]] || die "usage: $0 run SCRIPT [ARGS...]"; run_aarch64 "$@" ;;
  proof) proof "$@" ;;
  *) die "usage: $0 [setup|run SCRIPT [ARGS...]|proof [run_models.py args]]" ;;
esac
