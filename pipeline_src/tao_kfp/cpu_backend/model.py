"""ResNet laid out like TAO's classification ResNet (layer names, strides, shortcuts).

The architecture is a plain dict (the "arch config") so a checkpoint can carry it: pruning only
changes ``widths`` (output channels per conv layer) and the smaller network is rebuilt from it.

TAO's template: ``conv1`` 7x7/2 (+ ``bn_conv1``), then four stages of BasicBlocks with 64, 128,
256, 512 filters and strides (2, 2, 2, 1), or (1, 2, 2, 2) after a 3x3/2 max pool when
``use_pooling`` is set. The first block of a stage always has a 1x1 projection shortcut, the
others only with ``all_projections``. The head here is global average pooling, ``flatten`` and
the Dense ``predictions`` layer (softmax is applied by the callers and by the exported graph).
"""

from __future__ import annotations

import torch
from torch import nn

STAGE_FILTERS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2)}
SUPPORTED_ARCHS = ("resnet",)


def block_layout(n_layers: int) -> list[tuple[int, str, bool]]:
    """Returns ``(stage, block name, first block of its stage)`` for every residual block."""
    layout = []
    for stage, repeat in enumerate(BLOCKS_PER_STAGE[n_layers], start=1):
        for index in range(repeat):
            layout.append((stage, f"block_{stage}{chr(ord('a') + index)}", index == 0))
    return layout


def has_projection(arch: dict, block: str) -> bool:
    """Whether ``block`` has a 1x1 shortcut convolution (else the shortcut is the identity)."""
    return f"{block}_conv_shortcut" in arch["widths"]


def default_arch(
    *,
    n_layers: int,
    input_shape: tuple[int, int, int],
    num_classes: int,
    use_batch_norm: bool = True,
    use_bias: bool = False,
    all_projections: bool = False,
    use_pooling: bool = False,
    dropout: float = 0.0,
    bn_momentum: float = 0.9,
    bn_epsilon: float = 1e-5,
) -> dict:
    """Builds the arch config of an unpruned ResNet."""
    if n_layers not in BLOCKS_PER_STAGE:
        supported = ", ".join(str(n) for n in sorted(BLOCKS_PER_STAGE))
        raise ValueError(
            f"model_config.n_layers: the CPU backend builds resnet {supported} (got {n_layers})"
        )
    widths = {"conv1": 64}
    for stage, block, first in block_layout(n_layers):
        filters = STAGE_FILTERS[stage - 1]
        widths[f"{block}_conv_1"] = filters
        widths[f"{block}_conv_2"] = filters
        if first or all_projections:
            widths[f"{block}_conv_shortcut"] = filters
    return {
        "arch": "resnet",
        "n_layers": n_layers,
        "input_shape": [int(v) for v in input_shape],
        "num_classes": num_classes,
        "use_batch_norm": use_batch_norm,
        "use_bias": use_bias,
        "use_pooling": use_pooling,
        "dropout": dropout,
        "bn_momentum": bn_momentum,
        "bn_epsilon": bn_epsilon,
        "widths": widths,
        "pruned": False,
    }


class ConvBN(nn.Module):
    """A Conv2D followed by an optional BatchNormalization, as one prunable unit."""

    def __init__(self, arch: dict, in_channels: int, out_channels: int, kernel: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel,
            stride=stride,
            padding=kernel // 2,
            bias=arch["use_bias"],
        )
        self.bn = None
        if arch["use_batch_norm"]:
            # Keras momentum m keeps m of the old running value; torch keeps (1 - momentum).
            self.bn = nn.BatchNorm2d(
                out_channels, eps=arch["bn_epsilon"], momentum=1.0 - arch["bn_momentum"]
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x


class BasicBlock(nn.Module):
    """Two 3x3 convolutions plus a projection or identity shortcut, added then ReLU."""

    def __init__(self, arch: dict, name: str, in_channels: int, stride: int):
        super().__init__()
        widths = arch["widths"]
        self.conv_1 = ConvBN(arch, in_channels, widths[f"{name}_conv_1"], 3, stride)
        self.conv_2 = ConvBN(arch, widths[f"{name}_conv_1"], widths[f"{name}_conv_2"], 3, 1)
        self.conv_shortcut = None
        if has_projection(arch, name):
            self.conv_shortcut = ConvBN(
                arch, in_channels, widths[f"{name}_conv_shortcut"], 1, stride
            )
        elif stride != 1 or in_channels != widths[f"{name}_conv_2"]:
            raise ValueError(f"{name}: identity shortcut needs stride 1 and equal channel counts")
        self.out_channels = widths[f"{name}_conv_2"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        shortcut = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        y = self.conv_2(torch.relu(self.conv_1(x)))
        return torch.relu(y + shortcut)


class ResNet(nn.Module):
    """The network described by an arch config; ``forward`` returns logits."""

    def __init__(self, arch: dict):
        super().__init__()
        self.arch = arch
        channels = arch["input_shape"][0]
        self.conv1 = ConvBN(arch, channels, arch["widths"]["conv1"], 7, 2)
        self.pool = nn.MaxPool2d(3, 2, padding=1) if arch["use_pooling"] else nn.Identity()
        strides = (1, 2, 2, 2) if arch["use_pooling"] else (2, 2, 2, 1)
        self.blocks = nn.ModuleDict()
        in_channels = arch["widths"]["conv1"]
        for stage, block, first in block_layout(arch["n_layers"]):
            stride = strides[stage - 1] if first else 1
            self.blocks[block] = BasicBlock(arch, block, in_channels, stride)
            in_channels = self.blocks[block].out_channels
        self.dropout = nn.Dropout(arch["dropout"]) if arch["dropout"] > 0 else nn.Identity()
        self.predictions = nn.Linear(in_channels, arch["num_classes"])
        self.frozen_batch_norms: list[nn.Module] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.pool(torch.relu(self.conv1(x)))
        for block in self.blocks.values():
            x = block(x)
        x = torch.flatten(torch.mean(x, dim=(2, 3), keepdim=True), 1)
        return self.predictions(self.dropout(x))

    def conv_units(self) -> dict[str, ConvBN]:
        """Maps TAO layer names (``conv1``, ``block_1a_conv_1``, ...) to their conv units."""
        units = {"conv1": self.conv1}
        for name, block in self.blocks.items():
            units[f"{name}_conv_1"] = block.conv_1
            units[f"{name}_conv_2"] = block.conv_2
            if block.conv_shortcut is not None:
                units[f"{name}_conv_shortcut"] = block.conv_shortcut
        return units

    def freeze(self, freeze_blocks: list[int], freeze_bn: bool) -> None:
        """Freezes TAO blocks (0 = conv1, 1-4 = stages) and optionally every BatchNorm.

        Frozen BatchNorms also stop updating their running statistics (kept in eval mode).
        """
        frozen_modules: list[nn.Module] = []
        if 0 in freeze_blocks:
            frozen_modules.append(self.conv1)
        for name, block in self.blocks.items():
            if int(name[len("block_")]) in freeze_blocks:
                frozen_modules.append(block)
        for module in frozen_modules:
            for param in module.parameters():
                param.requires_grad_(False)
        batch_norms = [
            m for f in frozen_modules for m in f.modules() if isinstance(m, nn.BatchNorm2d)
        ]
        if freeze_bn:
            batch_norms = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
            for bn in batch_norms:
                for param in bn.parameters():
                    param.requires_grad_(False)
        self.frozen_batch_norms = batch_norms

    def train(self, mode: bool = True) -> ResNet:  # noqa: D102
        super().train(mode)
        for bn in self.frozen_batch_norms:
            bn.eval()
        return self


def count_params(model: nn.Module) -> tuple[int, int]:
    """Returns ``(total, trainable)`` counted like Keras (BatchNorm running stats included)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    running_stats = sum(
        buf.numel()
        for name, buf in model.named_buffers()
        if name.endswith(("running_mean", "running_var"))
    )
    return trainable + frozen + running_stats, trainable


def format_summary(model: ResNet) -> str:
    """A Keras-style model summary: one row per layer with output shape and parameter count."""
    rows: list[tuple[str, str, int]] = []
    hooks = []
    channels, height, width = model.arch["input_shape"]
    rows.append(("input_1 (InputLayer)", f"(None, {channels}, {height}, {width})", 0))

    def record(label: str):
        def hook(module, _inputs, output):
            shape = ", ".join(str(d) for d in output.shape[1:])
            params = sum(p.numel() for p in module.parameters(recurse=False))
            params += sum(
                b.numel() for n, b in module.named_buffers(recurse=False) if "running" in n
            )
            rows.append((label, f"(None, {shape})", params))

        return hook

    for name, unit in model.conv_units().items():
        hooks.append(unit.conv.register_forward_hook(record(f"{name} (Conv2D)")))
        if unit.bn is not None:
            bn_name = "bn_conv1" if name == "conv1" else name.replace("_conv_", "_bn_")
            hooks.append(unit.bn.register_forward_hook(record(f"{bn_name} (BatchNormalization)")))
    hooks.append(model.predictions.register_forward_hook(record("predictions (Dense)")))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, channels, height, width))
    model.train(was_training)
    for hook in hooks:
        hook.remove()

    total, trainable = count_params(model)
    line = "_" * 80
    out = [line, f"{'Layer (type)':<44}{'Output Shape':<24}{'Param #':>12}", "=" * 80]
    out += [f"{label:<44}{shape:<24}{params:>12,}" for label, shape, params in rows]
    out += [
        "=" * 80,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        line,
    ]
    return "\n".join(out)


def predict(
    model: nn.Module, images: torch.Tensor, preprocess, batch_size: int = 256
) -> torch.Tensor:
    """Softmax probabilities for uint8 images, preprocessed batch by batch."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = preprocess(images[start : start + batch_size])
            outputs.append(torch.softmax(model(batch), dim=1))
    if not outputs:
        return torch.empty((0, model.arch["num_classes"]))
    return torch.cat(outputs)
