"""PyTorch definitions of the project's three networks.

All three are built from ops that survive full-integer quantisation cleanly (Conv, depthwise
Conv, ReLU, Add, global pooling, Linear, Sigmoid) and that XNNPACK and the Edge TPU run.
Output transforms that need float precision (mean-shape offset, exp of log-sigma,
evidential soft-plus) happen in the runtime's numpy post-processing, documented in each
model's manifest, so the int8 output tensors carry small, well-scaled ranges.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), act(inplace=True))


class Residual(nn.Module):
    """x + ReLU(BN(Conv3x3(x))): one dense conv per block. Dense 3x3 convs train ~9x faster
    than depthwise-separable blocks in PyTorch on this 2-core CPU (measured) and are what
    XNNPACK int8 and the Edge TPU run best."""

    def __init__(self, ch: int, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))
        self.act = act(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class Backbone(nn.Module):
    """96x96x1 -> features: GAP(12x12x64) ++ GAP(6x6x128) ++ learned 6x6 flatten (128).

    `act` is the activation everywhere: ReLU (AU net) or ReLU6 (landmark net: a bounded
    range [0, 6] that full-integer quantisation covers with a fixed, known int8 step)."""

    out_features = 64 + 128 + 128

    def __init__(self, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.s1 = nn.Sequential(
            conv_bn(1, 16, 3, 2, act),  # 48
            conv_bn(16, 32, 3, 2, act),  # 24
            Residual(32, act),
            conv_bn(32, 64, 3, 2, act),  # 12
            Residual(64, act),
            Residual(64, act),
        )
        self.s2 = nn.Sequential(conv_bn(64, 128, 3, 2, act), Residual(128, act))  # 6
        self.spatial = nn.Sequential(nn.Conv2d(128, 128, 6, 1, 0, bias=False), nn.BatchNorm2d(128), act(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled features, the 24x24x32 stride-4 map after the first residual block)."""
        mid = self.s1[:3](x)
        a = self.s1[3:](mid)
        b = self.s2(a)
        return torch.cat([a.mean((2, 3)), b.mean((2, 3)), self.spatial(b).flatten(1)], 1), mid


#: Rows / columns of the 24x24 stride-4 feature map (96-px crop) that hold each eye in the
#: landmark window, with room for the tracker's shift/scale/rotation jitter (mean-shape eye
#: boxes: rows 6-7, right eye cols 7-10, left eye cols 14-17).
EYE_ROWS = (3, 11)
EYE_COLS = ((3, 13), (11, 21))


class EyeBranch(nn.Module):
    """Fine eyelid evidence: a fixed stride-4 window around one eye -> 48 features."""

    def __init__(self, act: type[nn.Module]) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(32, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), act(inplace=True))
        h, w = (EYE_ROWS[1] - EYE_ROWS[0] + 1) // 2, (EYE_COLS[0][1] - EYE_COLS[0][0] + 1) // 2
        self.fc = nn.Sequential(nn.Linear(32 * h * w, 48), act(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


class LandmarkNet(nn.Module):
    """Grey 96x96 face crop -> 68 landmark offsets, 68 log-sigmas, 1 validity logit, 2 eye-closed logits.

    Outputs (ONNX order): offsets [1,136] (crop-normalised units, added to the mean shape
    stored in the manifest), log_sigma [1,68] (per-landmark isotropic std, natural log,
    crop-normalised units), validity [1,1] (logit), eye_closed [1,2] (logits of the
    subject's right eye = iBUG 36-41, then left eye = iBUG 42-47, closed).
    ReLU6 throughout (bounded activations for full-integer quantisation). With `eyes`, two
    eye branches read the stride-4 feature map around each eye (eyelids move by a few pixels:
    the pooled stride-16 features barely see it); their features feed the coordinate layer
    (zero-initialised columns, so a warm start is unchanged) and the eye-closed head.
    """

    def __init__(self, eyes: bool = True) -> None:
        super().__init__()
        act = nn.ReLU6
        self.backbone = Backbone(act)
        f = Backbone.out_features
        e = 96 if eyes else 0
        self.fc = nn.Sequential(nn.Linear(f, 256), act(inplace=True))
        self.offsets = nn.Linear(256 + e, 136)
        # The uncertainty head sees the raw multi-scale features too: whether a point is
        # occluded or blurred is visible there, not only in the coordinate embedding.
        self.log_sigma = nn.Sequential(nn.Linear(f + 256, 128), act(inplace=True), nn.Linear(128, 68))
        self.validity = nn.Sequential(nn.Linear(f, 64), act(inplace=True), nn.Linear(64, 1))
        self.eye_r = EyeBranch(act) if eyes else None
        self.eye_l = EyeBranch(act) if eyes else None
        # openpilot's eyesClosedProb, per eye
        self.eye_closed = nn.Sequential(nn.Linear(e + 256, 64), act(inplace=True), nn.Linear(64, 2)) if eyes else None
        #: export/run the eye_closed output (False: the eye branches still refine the points)
        self.eye_state_output = eyes
        if eyes:
            with torch.no_grad():
                self.offsets.weight[:, 256:].zero_()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f, mid = self.backbone.features(x)
        h = self.fc(f)
        ls = self.log_sigma(torch.cat([f, h], 1))
        v = self.validity(f)
        if self.eye_closed is None:
            return self.offsets(h), ls, v
        r0, r1 = EYE_ROWS
        er = self.eye_r(mid[:, :, r0:r1, EYE_COLS[0][0] : EYE_COLS[0][1]])
        el = self.eye_l(mid[:, :, r0:r1, EYE_COLS[1][0] : EYE_COLS[1][1]])
        he = torch.cat([h, er, el], 1)
        if not self.eye_state_output:
            return self.offsets(he), ls, v
        return self.offsets(he), ls, v, self.eye_closed(he)


class AUNet(nn.Module):
    """Grey 96x96 AU-aligned crop -> 128 hidden features (ReLU) -> 15 AU logits and
    7 expression logits (edgeaffect.constants.EXPRESSIONS).

    Shipped as an int8 *body* (everything up to the hidden features, `AUBody`) plus a float
    head (the last Linear, run in numpy by edgeaffect.models.aus from the manifest's
    `edgeaffect.float_head`): AU = 5 * sigmoid(logit), expression = softmax(logits).
    """

    def __init__(self, n_aus: int = 15, n_expressions: int = 7) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.trunk = nn.Sequential(nn.Linear(Backbone.out_features, 128), nn.ReLU(inplace=True))
        self.au = nn.Linear(128, n_aus)
        self.expr = nn.Linear(128, n_expressions)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.backbone(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(AU logits, expression logits)."""
        h = self.features(x)
        return self.au(h), self.expr(h)

    def head_spec(self) -> dict:
        """The float head for the manifest (see edgeaffect/models/_head.py)."""
        w = torch.cat([self.au.weight, self.expr.weight]).detach().double().numpy()
        b = torch.cat([self.au.bias, self.expr.bias]).detach().double().numpy()
        na = self.au.out_features
        return {"input": "au_features", "weight": w.tolist(), "bias": b.tolist(), "outputs": {
            "aus": {"slice": [0, na], "activation": "sigmoid", "scale": 5.0},
            "expression": {"slice": [na, na + self.expr.out_features], "activation": "softmax"},
        }}


class AUBody(nn.Module):
    """The int8 part of AUNet: crop -> 128 hidden features."""

    def __init__(self, net: AUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


class CausalConvBlock(nn.Module):
    def __init__(self, ch: int, dilation: int, k: int = 3) -> None:
        super().__init__()
        self.pad = (k - 1) * dilation
        self.conv = nn.Conv1d(ch, ch, k, dilation=dilation)
        self.act = nn.ReLU()
        self.proj = nn.Conv1d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.pad(x, (self.pad, 0))
        return x + self.proj(self.act(self.conv(y)))


class TemporalVANet(nn.Module):
    """Causal dilated TCN over a window [1, T, F] -> per-frame [1, T, 8] raw outputs:
    (mu_v, mu_a, log_nu_v, log_nu_a, log_alpha_v, log_alpha_a, log_beta_v, log_beta_a).

    A Normal-Inverse-Gamma (deep evidential regression) head: one forward pass gives
    aleatoric = beta/(alpha-1) and epistemic = beta/(nu (alpha-1)); the runtime applies
    tanh / softplus and maps them into [0, 1] (see edgeaffect/models/affect.py).
    Receptive field 1 + 2*(1+2+4+8+16+32+64) = 255 frames > the window, so the last frame
    sees the whole window. Shipped as an int8 body (`TemporalBody`: window -> [1, T, 32]
    hidden) plus the final 1x1 conv as a float head run in numpy on the last step.
    """

    def __init__(self, n_features: int, channels: int = 32, dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)) -> None:
        super().__init__()
        self.inp = nn.Conv1d(n_features, channels, 1)
        self.blocks = nn.Sequential(*[CausalConvBlock(channels, d) for d in dilations])
        self.out = nn.Conv1d(channels, 8, 1)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] -> [B, C, T]"""
        return self.blocks(torch.relu(self.inp(x.transpose(1, 2))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x)).transpose(1, 2)

    def head_spec(self) -> dict:
        w = self.out.weight.detach().double().numpy()[:, :, 0]
        b = self.out.bias.detach().double().numpy()
        return {"input": "va_features", "weight": w.tolist(), "bias": b.tolist(), "outputs": {"va_raw": {"slice": [0, 8], "activation": "none"}}}


class TemporalBody(nn.Module):
    def __init__(self, net: TemporalVANet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.hidden(x).transpose(1, 2)


def count_macs(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """(multiply-accumulates, parameters) for one forward pass, counted on Conv/Linear layers."""
    macs = 0

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
            macs += out.numel() * k
        elif isinstance(m, nn.Conv1d):
            macs += out.numel() * m.kernel_size[0] * (m.in_channels // m.groups)
        elif isinstance(m, nn.Linear):
            macs += out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    was = model.training
    model.eval()
    with torch.no_grad():
        model(example)
    model.train(was)
    for h in hs:
        h.remove()
    return macs, sum(p.numel() for p in model.parameters())


def export_onnx(
    model: nn.Module, example: torch.Tensor, path, input_names: list[str], output_names: list[str], metadata: dict[str, str]
) -> None:
    """ONNX export (opset 13, legacy exporter: static shapes onnx2tf converts) with the
    `edgeaffect.*` metadata the converter copies into the TFLite manifest."""
    import onnx

    model.eval()
    torch.onnx.export(model, example, str(path), input_names=input_names, output_names=output_names, opset_version=13, dynamo=False)
    m = onnx.load(str(path))
    for k, v in metadata.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(path))
