"""Delegate loading and CPU fallback (missing library, non-delegate .so, empty file), make_runner,
and the ONNX Runtime runner (CPUExecutionProvider, skipped without onnxruntime/onnx)."""

from __future__ import annotations

import base64
import ctypes.util
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgeaffect.errors import DelegateError
from edgeaffect.runtime import delegates as D
from edgeaffect.runtime.delegates import DelegateFallbackWarning, DelegateSpec, make_delegates, make_runner
from edgeaffect.scheduler.placement import ComputeUnit

pytestmark = pytest.mark.filterwarnings("ignore::edgeaffect.runtime.delegates.DelegateFallbackWarning")

# A 1.9 KB full-int8 model (Dense 16->8 relu -> 4 tanh, int8 I/O) made with TFLiteConverter:
# real LiteRT kernels without depending on the shipped models.
_TINY = (
    "eNqtVV1sFFUUvttu2dk6llWWtupqVu3DkuDSLT9BbrE2BQNk20K78CCEce3MwuJ2dt2dATFNdrcSIZGERDGGBAoJL8agL5TQSF8o"
    "CMQAgiSASdWEGvGnRF6QVGjHc2bO7gwF9cW7+Wbu3nvu+b57zrl3goyx2GvR+fBifhZkAVYPbx8T4b/A3NBnMMbYboDoYuxIBWPD"
    "gHoPY5UwBkNgxVj1pGGIZNsMmAnIKdmtSXWTJCuJuJ7SyrabDcOoor4ASOtaRtekRubw9yf4wzf6fEvJxnOSpqi5dBZtkHcDYC7Z"
    "DoE/L/VnAdo6O9Yt7+pe2dkhtS+PtS5rjbWyUbARHDa9SVXK6qqW7FWkrUo2l0yroEU094x2nv+wrYbx/SB2L0AGnIf/pwHDgEHA"
    "XoBGPkamrL28QfsRWE2ZxwcI4abYDHNsBq3BOPxeifalfLjNtfdaeG3ThBCBFLAKssU1TeHIy2GIYNiwuHzs4bbKMRcJRxaEG+25"
    "PtBYAOwAZMmuADix9lyz0Jk/dVMacI33vxSQzlZ8uef7TLAY2fHB4Mc9X7wTym/p/27s/VCgpXtI8AxcPzRy+kpszdn7O0/M/2sy"
    "f6s/uP+z3+4sqpkznJjzR+3h/L7rP34++8YZMf9q86aNVUvbROH5j9ZPjPX/fMM79Wnx7r3ih2rL4pZXOp5evHv8h6vSyPS4BAF1"
    "l0crry29VhxzX16zcU/xq/XHfr14IVR8alZeXlj3Td+GFaA/CsAabI+u7Aq2pVXIm6bIYTOufnPHNeXIov8aGsf6/QnwC2CcOHvj"
    "SbVUd3gOlpXjW11eX0259VHuEFWOekY+vzkvssccfFgOPuq7zZ+9ppLZZwy2Y6CP2mk+6slHPWm34uUx44VLXQ4/jGoGfTn1Maqh"
    "8zA5F5BxWTHIkI43J5GbuVBjI9lC82IcopPWufI5fDG73/wMPLq1uKYk9NTqeFZLanB6FLktnkpJkSWNpp7Sfr928CwgfcgTxTNF"
    "PH6yv29YrcS1a/QT/iy8E7ragxRxcD9PhitDkSJS07z2uNaup2j/Jb4lUw/yuYlPhkfD1IN8hWl8Ey9E+cJ/4CM2/si5LiWlO3QI"
    "dD+UdOyyc+XFO+QI6YiS7f/R0M+B13u44t/Od+5T+bePF/hRReO3j2/j2+708UXvbedP4v2VSIUzOUWX09LbPWk1p0Us3aV8v2vY"
    "umO0J9SN95xM923Ijuu/NrS5tHqQn7x0gM9+8SC/eXyAP/EoDY57z4pHrfnNqqOTaDWPeU5QW5C+R1SP3ph5TkWKg5vuY7t+S3nG"
    "/lBDgT/38HdMcn6PoITLufSRtgbSdxv8BOy4BESwmOng9Tpq7m/zNXUK"
)


def make_tiny_model(d: Path, name: str = "tiny") -> Path:
    """Write the tiny model and its manifest into d; return the manifest path."""
    from edgeaffect.runtime.backends import load_backend
    from edgeaffect.runtime.manifest import Manifest, TensorSpec, sha256_file

    p = d / f"{name}.tflite"
    p.write_bytes(zlib.decompress(base64.b64decode("".join(_TINY))))
    it = load_backend().Interpreter(model_path=str(p))
    it.allocate_tensors()

    def spec(t: dict, logical: str, idx: int | None = None) -> TensorSpec:
        s, z = t["quantization"]
        return TensorSpec(logical, t["name"], [int(v) for v in t["shape"]], np.dtype(t["dtype"]).name, "NC",
                          float(s), int(z), idx)

    m = Manifest(name, "generic", "int8_io", p.name, sha256_file(p),
                 [spec(t, "x") for t in it.get_input_details()],
                 [spec(t, "y", 0) for t in it.get_output_details()])
    mp = d / f"{name}.json"
    m.write(mp)
    return mp


@pytest.fixture(autouse=True)
def _fresh_warnings():
    D.reset_warnings()
    yield
    D.reset_warnings()


def _unit(kind: str, library: str = "", **opts) -> ComputeUnit:
    return ComputeUnit(f"u_{kind}", kind, 2, DelegateSpec(kind, kind, library, opts) if library else None)


def test_cpu_unit_needs_no_delegate():
    dels, desc, w = make_delegates(ComputeUnit("cpu", "cpu", 3), None)
    assert dels == [] and w == [] and "XNNPACK" in desc and "3 threads" in desc


@pytest.mark.parametrize("kind,lib", [("edgetpu", "libedgetpu.so.1"), ("armnn", "libarmnnDelegate.so"),
                                      ("gpu", "libtensorflowlite_gpu_delegate.so")])
def test_missing_library_falls_back_with_one_warning(kind, lib):
    u = _unit(kind, "/nonexistent/" + lib)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        dels, desc, w = make_delegates(u, None)
        make_delegates(u, None)  # a second module on the same unit: no second warning
    assert dels == [] and "fallback" in desc
    assert len(w) == 1 and lib in w[0] and "not found" in w[0]
    assert len([r for r in rec if issubclass(r.category, DelegateFallbackWarning)]) == 1


def test_default_library_names_are_searched():
    dels, _, w = make_delegates({"name": "tpu", "kind": "edgetpu", "threads": 1}, None)
    assert dels == [] and "libedgetpu.so.1" in w[0]


def test_non_delegate_shared_library_falls_back():
    libm = ctypes.util.find_library("m")
    path = D.find_shared_library(libm) if libm else None
    if path is None:
        pytest.skip("libm not found")
    dels, _, w = make_delegates(_unit("gpu", str(path)), None)
    assert dels == [] and "not a TFLite external delegate" in w[0] and str(path) in w[0]


def test_empty_file_falls_back(tmp_path):
    f = tmp_path / "libedgetpu.so.1"
    f.write_bytes(b"")
    dels, _, w = make_delegates(_unit("edgetpu", str(f)), None)
    assert dels == [] and "empty file" in w[0]


def test_text_file_is_not_a_library(tmp_path):
    f = tmp_path / "libarmnnDelegate.so"
    f.write_text("not elf")
    _, _, w = make_delegates(_unit("armnn", str(f)), None)
    assert "not an ELF" in w[0]


def test_edgetpu_needs_compiled_model(tmp_path):
    model = tmp_path / "landmarks_int8.tflite"
    model.write_bytes(b"x")
    _, _, w = make_delegates(_unit("edgetpu", "libedgetpu.so.1"), None, model_path=model)
    assert "landmarks_int8_edgetpu.tflite" in w[0] and "edgetpu_compiler" in w[0]
    assert D.edgetpu_variant(model).name == "landmarks_int8_edgetpu.tflite"


def test_unknown_kind_is_an_error():
    with pytest.raises(DelegateError, match="unknown kind"):
        make_delegates(ComputeUnit("x", "npu", 1), None)


def test_make_runner_falls_back_and_runs(tmp_path):
    mp = make_tiny_model(tmp_path)
    r, desc, w = make_runner(mp, _unit("gpu", str(tmp_path / "missing.so")), warn=False)
    assert "fallback" in desc and w
    y = r.run(np.full((1, 16), 0.5, np.float32))["y"]
    assert y.shape == (1, 4) and np.all(np.abs(y) <= 1.0)
    r2, desc2, w2 = make_runner(mp, ComputeUnit("cpu", "cpu", 1))
    assert w2 == [] and np.array_equal(r2.run(np.full((1, 16), 0.5, np.float32))["y"], y)


def test_onnxruntime_unit_without_onnx_falls_back(tmp_path):
    mp = make_tiny_model(tmp_path)
    r, desc, w = make_runner(mp, ComputeUnit("trt", "onnxruntime", 1), warn=False)
    assert "tiny.onnx" in w[0] and r.run(np.zeros((1, 16), np.float32))["y"].shape == (1, 4)


def _tiny_onnx(path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "W")
    b = numpy_helper.from_array(np.array([1, -1, 0.5], np.float32), "B")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["y"])],
                          "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))


def test_onnxruntime_runner_cpu_provider(tmp_path):
    pytest.importorskip("onnxruntime")
    p = tmp_path / "tiny.onnx"
    _tiny_onnx(p)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r = D.OnnxRuntimeRunner(p)  # asks for TensorRT/CUDA first: absent here -> one warning
    assert r.providers[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in r.providers:
        assert any("TensorrtExecutionProvider" in str(x.message) for x in rec)
    x = np.array([[1, 2, 3, 4]], np.float32)
    y = r.run(x)["y"]
    np.testing.assert_allclose(y, x @ (np.arange(12, dtype=np.float32).reshape(4, 3) / 10) + [1, -1, 0.5], rtol=1e-6)
    assert r.input_shapes == [(1, 4)]
