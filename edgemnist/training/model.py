"""The MLP module and its folding for export.  [train side]

Its architecture is `settings.MLPConfig` (torch-free: it travels in the checkpoint).

The module takes pixels as the ONNX contract does: float32 [N, 1, 28, 28] in [0, 1], light digit on
dark background; normalization is its first step, so the exported graph carries it too.
"""

from __future__ import annotations

import torch
from torch import nn

from edgemnist.settings import MLPConfig


class MLP(nn.Module):
    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.tensor(config.mean), persistent=False)
        self.register_buffer("std", torch.tensor(config.std), persistent=False)
        layers: list[nn.Module] = []
        width = config.input_size
        for h in config.hidden:
            layers.append(nn.Linear(width, h, bias=not config.batchnorm))
            if config.batchnorm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = h
        layers.append(nn.Linear(width, config.num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels.flatten(1) - self.mean) / self.std
        return self.layers(x)


class FoldedMLP(nn.Module):
    """The inference form of an MLP: normalization and batch norm folded into the Linear layers.

    Same function as the trained model (up to float rounding), fewer ops: Flatten, then Gemm/Relu only.
    """

    def __init__(self, linears: list[nn.Linear]):
        super().__init__()
        seq: list[nn.Module] = []
        for i, lin in enumerate(linears):
            seq.append(lin)
            if i < len(linears) - 1:
                seq.append(nn.ReLU())
        self.layers = nn.Sequential(*seq)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.layers(pixels.flatten(1))


@torch.no_grad()
def fold(model: MLP) -> FoldedMLP:
    """Fold (x - mean) / std into the first Linear and each eval-mode BatchNorm into its Linear."""
    model = model.eval()
    linears: list[nn.Linear] = []
    mods = [m for m in model.layers if isinstance(m, (nn.Linear, nn.BatchNorm1d))]
    i = 0
    while i < len(mods):
        lin = mods[i]
        w = lin.weight.double()
        b = lin.bias.double() if lin.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        if i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm1d):
            bn = mods[i + 1]
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            w = w * scale[:, None]
            b = (b - bn.running_mean.double()) * scale + bn.bias.double()
            i += 1
        if not linears:  # the input normalization: W((x - m) / s) + b = (W / s) x + (b - W.sum(1) m / s)
            b = b - w.sum(1) * model.config.mean / model.config.std
            w = w / model.config.std
        out = nn.Linear(w.shape[1], w.shape[0])
        out.weight.copy_(w.float())
        out.bias.copy_(b.float())
        linears.append(out)
        i += 1
    return FoldedMLP(linears).eval()
