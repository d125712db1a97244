"""`edgeaffect inspect` must work on a device without the [convert] extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "onnx", "onnxruntime", "onnx2tf", "torch", "tf_keras", "scipy")


def test_inspect_and_lint_do_not_import_the_toolchain():
    code = (
        "import sys, json\n"
        "import edgeaffect, edgeaffect_converters, edgeaffect_converters.inspect_model, edgeaffect_converters.lint, edgeaffect_converters.cli\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == []


def test_inspect_refuses_a_non_tflite_file(tmp_path, capsys):
    from edgeaffect_converters.inspect_model import inspect_main

    f = tmp_path / "model.tflite"
    f.write_bytes(b"\x00" * 64)
    assert inspect_main([str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not a TFLite flatbuffer" in err and "\n" not in err


def test_inspect_missing_file(tmp_path, capsys):
    from edgeaffect_converters.inspect_model import inspect_main

    assert inspect_main([str(tmp_path / "nope.tflite")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["edgeaffect_converters.inspect_model", "edgeaffect_converters.lint"])
def test_device_modules_import_only_numpy_and_runtime(name):
    import ast
    import importlib.util

    src = Path(importlib.util.find_spec(name).origin).read_text()
    mods = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            mods.add((node.module or "").split(".")[0])
    assert mods <= {"__future__", "argparse", "json", "sys", "warnings", "pathlib", "typing", "numpy", "edgeaffect",
                    "shutil", "subprocess", "tempfile"}, mods
