"""Landmark training helpers (need the [train] extra: skipped without torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[1]
ONNX = REPO / "models" / "landmarks" / "landmarks.onnx"


@pytest.mark.skipif(not ONNX.exists(), reason="no landmark ONNX")
def test_warm_start_from_the_committed_onnx_reproduces_it():
    """load_onnx_weights maps each Gemm to its layer by name: the exporter does not emit the
    heads in module order (the offsets layer comes last), which broke --init-onnx."""
    from training.models import LandmarkNet
    from training.train_landmarks import load_onnx_weights

    net = LandmarkNet(eyes=False)
    mean = load_onnx_weights(net, ONNX)
    net.eval()
    assert mean.shape == (68, 2)
    sess = ort.InferenceSession(str(ONNX))
    for seed in (0, 1):
        x = np.random.default_rng(seed).random((1, 1, 96, 96)).astype(np.float32)
        ref = sess.run(None, {"image": x})
        with torch.no_grad():
            got = net(torch.from_numpy(x))
        for r, g in zip(ref, got):
            np.testing.assert_allclose(g.numpy(), r, atol=1e-4)


def test_point_weights_favour_the_jaw_and_keep_the_scale():
    from training.train_landmarks import point_weights

    w = point_weights(1.5)
    assert w.shape == (68,)
    assert float(w.mean()) == pytest.approx(1.0)
    assert float(w[0]) == pytest.approx(1.5 * float(w[30]))
    assert torch.equal(point_weights(1.0), torch.ones(68))


def _toy(n_pos: int = 3, n_neg: int = 2):
    from training.models import LandmarkNet

    torch.manual_seed(0)
    model = LandmarkNet(eyes=False).eval()
    x = torch.rand(n_pos + n_neg, 1, 96, 96)
    pts = torch.rand(n_pos, 68, 2) * 0.5 + 0.25
    dis = torch.zeros(n_pos, 68)
    valid = torch.tensor([1.0] * n_pos + [0.0] * n_neg)
    return model, torch.zeros(68, 2), x, pts, dis, valid


def test_tight_positives_stay_out_of_the_validity_term():
    from training.train_landmarks import losses

    model, mean, x, pts, dis, valid = _toy()
    tight = torch.tensor([True, True, False, False, False])
    _, _, lv_masked, *_ = losses(model, mean, x, pts, dis, valid, tight=tight)
    with torch.no_grad():
        logits = model(x)[2][:, 0]
    keep = ~tight
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], valid[keep])
    assert float(lv_masked) == pytest.approx(float(expected), rel=1e-5)
    _, _, lv_all, *_ = losses(model, mean, x, pts, dis, valid)
    assert float(lv_all) != pytest.approx(float(lv_masked))


def test_validity_anchor_is_zero_gradient_at_the_reference():
    """The soft validity target pulls towards the reference network's probabilities: a model
    that already matches them gets no gradient from it (only from the hard labels)."""
    from training.train_landmarks import losses

    model, mean, x, pts, dis, valid = _toy()
    with torch.no_grad():
        ref = torch.sigmoid(model(x)[2][:, 0])
    base = losses(model, mean, x, pts, dis, valid)[2]
    anchored = losses(model, mean, x, pts, dis, valid, valid_ref=ref, anchor_weight=2.0)[2]
    soft = torch.nn.functional.binary_cross_entropy_with_logits(torch.logit(ref), ref)
    assert float(anchored) == pytest.approx(float(base + 2.0 * soft), rel=1e-5)
    logit = torch.logit(ref).clone().requires_grad_(True)
    torch.nn.functional.binary_cross_entropy_with_logits(logit, ref).backward()
    assert float(logit.grad.abs().max()) < 1e-6


def test_heads_only_freezes_backbone_and_validity_also_after_qat_prepare():
    from training import qat
    from training.models import LandmarkNet
    from training.train_landmarks import freeze_all_but_heads

    model = LandmarkNet(eyes=False)
    qat.prepare(model)  # swaps in new layers whose parameters train by default
    freeze_all_but_heads(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("fc.", "offsets.", "log_sigma.")) for n in trainable)
    assert any(n.startswith("offsets.") for n in trainable) and any(n.startswith("log_sigma.") for n in trainable)


def test_activation_quant_off_gives_the_baked_float_network():
    """set_act_quant(False) is what the exported float ONNX computes (weights on the int8 grid,
    activations not rounded): the QAT consistency term compares the two passes."""
    from training import qat
    from training.models import LandmarkNet
    from training.train_landmarks import plain_state

    torch.manual_seed(0)
    model = LandmarkNet(eyes=False)
    qat.prepare(model)
    x = torch.rand(4, 1, 96, 96)
    model(x)  # observers see a batch
    model.eval()
    with torch.no_grad():
        q = model(x)[0]
        qat.set_act_quant(model, False)
        f = model(x)[0]
        qat.set_act_quant(model, True)
        assert not torch.allclose(q, f)
        qat.bake(model)
        plain = LandmarkNet(eyes=False)
        plain.load_state_dict(plain_state(model))
        plain.eval()
        torch.testing.assert_close(plain(x)[0], f, atol=1e-5, rtol=1e-4)


def test_residual_range_penalty_marks_the_branches_and_only_counts_overshoot():
    from training import qat
    from training.models import LandmarkNet, Residual

    torch.manual_seed(0)
    model = LandmarkNet(eyes=False)
    qat.prepare(model)
    marked = qat.bound_residuals(model)
    assert len(marked) == sum(isinstance(m, Residual) for m in model.modules()) > 0
    model.train()
    model(torch.rand(2, 1, 96, 96))
    assert float(qat.range_penalty(model)) == 0.0  # fresh BN-folded branches stay inside +-6
    with torch.no_grad():
        conv = next(m for m in model.modules() if isinstance(m, Residual)).body[0]
        conv.weight.zero_()
        conv.bias.fill_(8.0)
    model(torch.rand(2, 1, 96, 96))
    assert float(qat.range_penalty(model)) == pytest.approx(4.0, rel=1e-3)  # (8 - 6)^2 everywhere in that branch


def test_yaw_warp_is_reported_and_hides_points():
    from training.augment import landmark_sample

    rng = np.random.default_rng(0)
    img = (np.random.default_rng(1).random((200, 200)) * 255).astype(np.uint8)
    pts = np.stack(np.meshgrid(np.linspace(60, 140, 17), np.linspace(60, 140, 4)), -1).reshape(-1, 2)[:68].astype(np.float32)
    info: dict = {}
    _, _, occ = landmark_sample(img, pts, rng, 96, yaw_p=1.0, max_yaw_deg=65.0, info=info)
    assert 15.0 <= abs(info["yaw_deg"]) <= 65.0
    info = {}
    landmark_sample(img, pts, rng, 96, yaw_p=0.0, info=info)
    assert "yaw_deg" not in info


def test_validity_only_trains_the_validity_head_alone_also_after_qat_prepare():
    from training import qat
    from training.models import LandmarkNet
    from training.train_landmarks import freeze_all_but_validity

    model = LandmarkNet(eyes=False)
    qat.prepare(model)
    freeze_all_but_validity(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("validity.") for n in trainable)


def test_corner_anchor_is_zero_at_the_reference_and_moves_only_the_eye_corners():
    from training.train_landmarks import EYE_CORNERS, corner_anchor_loss

    g = torch.Generator().manual_seed(0)
    pts = torch.rand(3, 68, 2, generator=g) * 0.4 + 0.3
    ref = torch.randn(5, 136, generator=g) * 0.01  # 3 positives + 2 negatives
    off = ref.clone().requires_grad_(True)
    loss = corner_anchor_loss(off, ref, pts)
    assert float(loss) == 0.0
    moved = ref.clone()
    moved[:, 2 * 40] += 0.05  # a non-corner point (iBUG 40) and every negative: not counted
    moved[3:] += 1.0
    assert float(corner_anchor_loss(moved, ref, pts)) == 0.0
    off = (ref + 0.01).requires_grad_(True)
    corner_anchor_loss(off, ref, pts).backward()
    grad = off.grad.view(5, 68, 2).abs().sum(2)
    assert (grad[:3, list(EYE_CORNERS)] > 0).all()
    mask = torch.ones(68, dtype=torch.bool)
    mask[list(EYE_CORNERS)] = False
    assert float(grad[:3, mask].sum()) == 0.0 and float(grad[3:].sum()) == 0.0


def test_out_keeps_the_stage3_checkpoints_of_a_run_apart(tmp_path, monkeypatch):
    """--out runs keep their own checkpoints: a chained second run (the --validity-only pass) must
    not resume the first run's finished QAT checkpoint from the shared work/landmarks/."""
    from training import train_landmarks as tl

    monkeypatch.setattr(tl, "STATE_DIR", tmp_path / "run_a" / "state")
    a = tl.state_path("ckpt_qat.pt")
    monkeypatch.setattr(tl, "STATE_DIR", tmp_path / "run_b" / "state")
    b = tl.state_path("ckpt_qat.pt")
    assert a != b and a.parent.is_dir() and b.parent.is_dir()


def test_corner_anchor_can_be_limited_to_the_tracker_like_positives():
    from training.train_landmarks import corner_anchor_loss

    g = torch.Generator().manual_seed(1)
    pts = torch.rand(4, 68, 2, generator=g) * 0.4 + 0.3
    ref = torch.randn(4, 136, generator=g) * 0.01
    off = ref.clone()
    off[1] += 0.05  # only positive 1 moved
    only = torch.tensor([True, False, True, False])
    assert float(corner_anchor_loss(off, ref, pts, only)) == 0.0
    assert float(corner_anchor_loss(off, ref, pts, ~only)) > 0.0
    x = off.clone().requires_grad_(True)
    corner_anchor_loss(x, ref, pts, torch.zeros(4, dtype=torch.bool)).backward()  # none selected: zero, still differentiable
    assert float(x.grad.abs().sum()) == 0.0
