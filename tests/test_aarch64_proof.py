"""aarch64 proof under qemu (runs only where scripts/aarch64_proof.sh setup has been done)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DIR = Path(os.environ.get("EDGEAFFECT_AARCH64_DIR", REPO / "work" / "aarch64"))


@pytest.mark.slow
def test_aarch64_outputs_match_x86_bit_for_bit():
    if not (DIR / "rootfs" / "usr" / "bin" / "python3.11").exists() or not (DIR / "site" / ".edgeaffect-ok").exists():
        pytest.skip(f"no emulated aarch64 Python at {DIR} (run scripts/aarch64_proof.sh setup)")
    if not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")):
        pytest.skip("qemu-aarch64-static not installed (apt-get install qemu-user-static)")
    r = subprocess.run(["bash", str(REPO / "scripts" / "aarch64_proof.sh"), "proof"], capture_output=True, text=True,
                       timeout=600, cwd=REPO)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("aarch64 proof:")), "")
    assert r.returncode == 0 and "-> PASS" in line, r.stdout[-2000:] + r.stderr[-2000:]
    assert "all integer xnnpack/ tensors identical" in line
