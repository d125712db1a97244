"""Quantisation-aware fine-tuning that mirrors what the TFLite full-integer converter does.

The converter (onnx2tf -oiqt -> TFLite MLIR quantiser) folds BatchNorm into the preceding
convolution, quantises weights symmetrically per output channel (int8, [-127, 127]) and
every activation tensor asymmetrically per tensor (int8, min/max over the calibration set).
`prepare` turns a float LandmarkNet into that picture inside PyTorch:

- BatchNorm folded into its convolution (weights + bias), the BN replaced by Identity;
- Conv/Linear weights fake-quantised per output channel on every forward pass;
- fake-quant (EMA min/max observer, like the calibrator's min/max) after every activation,
  after each residual branch's convolution (an ADD input the converter quantises on its own)
  and on the four head outputs.

Gradients flow through the rounding with the straight-through estimator
(`torch.fake_quantize_*`). `bake` removes the observers and writes the fake-quantised
weights back, so the exported float ONNX holds weights that sit exactly on the int8 grid
the converter will pick (scale = max|w| / 127 per channel).
"""

from __future__ import annotations

import torch
from torch import nn


class ActFakeQuant(nn.Module):
    """Per-tensor asymmetric int8 fake quantisation with an EMA min/max observer."""

    def __init__(self, momentum: float = 0.02) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.register_buffer("seen", torch.tensor(0))
        #: False: pass activations through unquantised (the float ONNX the gate compares with)
        self.enabled = True
        #: set by `bound_residuals`: in training, `penalty` = mean squared overshoot of |x| beyond this
        self.bound: float | None = None
        self.penalty: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bound is not None and self.training and self.enabled:
            self.penalty = torch.relu(x.abs() - self.bound).pow(2).mean()
        if not self.enabled:
            return x
        if self.training:
            lo, hi = x.detach().min(), x.detach().max()
            if int(self.seen) == 0:
                self.lo.copy_(lo)
                self.hi.copy_(hi)
            else:
                self.lo.mul_(1 - self.momentum).add_(self.momentum * lo)
                self.hi.mul_(1 - self.momentum).add_(self.momentum * hi)
            self.seen += 1
        lo = min(float(self.lo), 0.0)
        hi = max(float(self.hi), 0.0)
        scale = max((hi - lo) / 255.0, 1e-8)
        zp = int(round(-128 - lo / scale))
        zp = max(-128, min(127, zp))
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, -128, 127)


def _fq_weight(w: torch.Tensor) -> torch.Tensor:
    amax = w.detach().abs().flatten(1).max(1).values.clamp(min=1e-8)
    scale = (amax / 127.0).float()
    zp = torch.zeros(len(scale), dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(w, scale, zp, 0, -127, 127)


class QConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, _fq_weight(self.weight), self.bias)


class QLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, _fq_weight(self.weight), self.bias)


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> QConv2d:
    q = QConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True)
    std = torch.sqrt(bn.running_var + bn.eps)
    g = bn.weight / std
    with torch.no_grad():
        q.weight.copy_(conv.weight * g[:, None, None, None])
        b0 = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        q.bias.copy_((b0 - bn.running_mean) * g + bn.bias)
    return q


def _to_qlinear(lin: nn.Linear) -> QLinear:
    q = QLinear(lin.in_features, lin.out_features, bias=lin.bias is not None)
    q.load_state_dict(lin.state_dict())
    return q


def fold_and_swap(module: nn.Module) -> None:
    """In place: every Conv2d followed by a BatchNorm2d inside a Sequential becomes one
    QConv2d with the BN folded in; every Linear becomes a QLinear."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Sequential):
            mods = list(child)
            i = 0
            while i < len(mods):
                if isinstance(mods[i], nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
                    mods[i] = _fold(mods[i], mods[i + 1])
                    mods[i + 1] = nn.Identity()
                    i += 2
                    continue
                i += 1
            for j, m in enumerate(mods):
                child[j] = m
        if isinstance(child, nn.Linear) and not isinstance(child, QLinear):
            setattr(module, name, _to_qlinear(child))
        else:
            fold_and_swap(child)


def _hook(fq: ActFakeQuant):
    def h(_m: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
        return fq(out)

    h.fq = fq  # type: ignore[attr-defined]
    return h


def prepare(model: nn.Module) -> nn.Module:
    """Fold BN, fake-quantise weights, attach activation observers (see the module docstring)."""
    from .models import Residual

    model.train()
    fold_and_swap(model)
    model.act_fq = nn.ModuleList()  # type: ignore[attr-defined]
    handles = []
    targets: list[nn.Module] = [m for m in model.modules() if isinstance(m, nn.ReLU6)]
    targets += [m.body for m in model.modules() if isinstance(m, Residual)]
    heads = [model.offsets, model.log_sigma[-1], model.validity[-1]]
    if getattr(model, "eye_closed", None) is not None:
        heads.append(model.eye_closed[-1])
    targets += heads
    for t in targets:
        fq = ActFakeQuant()
        model.act_fq.append(fq)  # type: ignore[attr-defined]
        handles.append(t.register_forward_hook(_hook(fq)))
    model._qat_handles = handles  # type: ignore[attr-defined]
    return model


def bound_residuals(model: nn.Module, bound: float = 6.0) -> list[ActFakeQuant]:
    """Mark the quantisers of the residual branches (Residual.body outputs b in ReLU6(x + b),
    x in [0, 6]) for a range penalty: any |b| > 6 gives the same output as +-6, so pulling
    the branch inside [-6, 6] leaves the float function as it is, while the converter
    calibrates that tensor's int8 scale on its min/max (measured -17..12 before: the largest
    single source of the full-int8 file's NME delta). Returns the marked quantisers."""
    from .models import Residual

    marked = []
    for m in model.modules():
        if isinstance(m, Residual):
            for h in m.body._forward_hooks.values():
                fq = getattr(h, "fq", None)
                if isinstance(fq, ActFakeQuant):
                    fq.bound = bound
                    marked.append(fq)
    return marked


def range_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of the marked quantisers' overshoot penalties from the last training forward pass."""
    out = torch.zeros(())
    for m in model.modules():
        if isinstance(m, ActFakeQuant) and m.bound is not None and m.penalty is not None:
            out = out + m.penalty
    return out


def set_act_quant(model: nn.Module, on: bool) -> None:
    """Switch the activation fake-quant of a prepared model on/off (weights stay on their int8
    grid either way). Off, the model computes what its baked float ONNX computes."""
    for m in model.modules():
        if isinstance(m, ActFakeQuant):
            m.enabled = on


def bake(model: nn.Module) -> nn.Module:
    """Remove the observers and snap the weights onto their int8 grid (for export)."""
    for h in getattr(model, "_qat_handles", []):
        h.remove()
    model._qat_handles = []  # type: ignore[attr-defined]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (QConv2d, QLinear)):
                m.weight.copy_(_fq_weight(m.weight))
                m.__class__ = nn.Conv2d if isinstance(m, QConv2d) else nn.Linear  # plain ops for the ONNX export
    return model
