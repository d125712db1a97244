"""The shipped int8 networks agree with their float ONNX sources within the fidelity budget,
on inputs produced by the pipeline itself from the real shared video."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import REPO, VIDEO

pytest.importorskip("onnxruntime", reason="needs the [convert] extra (onnxruntime)")
pytest.importorskip("onnx", reason="needs the [convert] extra (onnx)")

from edgeaffect_converters.fidelity import Budget, task_metrics  # noqa: E402

from edgeaffect.calibration_inputs import OnnxModelAdapter, collect_model_inputs  # noqa: E402
from edgeaffect.runtime.runner import ModelRunner  # noqa: E402

NETS = {"detector": "detector", "landmarks": "landmarks", "au": "aus", "temporal": "affect"}


@pytest.fixture(scope="module")
def real_inputs(assets, shared_data):
    # the whole clip (stride 2 for windows): early windows alone are mostly zero padding
    return collect_model_inputs(VIDEO, list(NETS), max_per_kind=128, max_frames=275, temporal_stride=2)


@pytest.mark.convert
@pytest.mark.parametrize("kind", list(NETS))
def test_int8_matches_float_within_budget(assets, real_inputs, kind):
    from edgeaffect.models import find_model

    src = NETS[kind]
    onnx_path = REPO / "models" / src / f"{src}.onnx"
    ref_model = OnnxModelAdapter(onnx_path, kind)
    q = ModelRunner(find_model(assets, kind))  # the shipped variant (int8 where it passed the gate)
    x = real_inputs[kind]
    assert len(x) >= 16
    ref = {n: [] for n in (o.name for o in ref_model.manifest.outputs)}
    got = {n: [] for n in ref}
    for s in x:
        r, g = ref_model.run(s[None]), q.run(s[None])
        for n in ref:
            ref[n].append(r[n][0])
            got[n].append(g[n][0])
    ref = {n: np.stack(v) for n, v in ref.items()}
    got = {n: np.stack(v) for n, v in got.items()}
    metrics, failures = task_metrics(kind, ref, got, ref_model.manifest.metadata | q.manifest.metadata, Budget())
    assert not failures, (failures, metrics)
