"""``prune``: structured filter pruning in the manner of TAO's ``magnet_prune``.

Each conv layer's filters are scored by their kernel norm, normalised per layer (``-n max``
divides by the largest norm, ``-n L2`` by the L2 norm of all of them times their count, as
TAO does). Layers whose outputs meet in a residual addition (a block's last conv, its
projection shortcut, or through identity shortcuts the previous blocks' outputs) must keep the
same channels, so their scores are merged with the equalization criterion (``-eq``: union =
max, intersection = min, arithmetic_mean, geometric_mean) and one channel set is chosen for the
whole group. A layer keeps the filters scoring above ``-pth``, at least ``-nf``, rounded up to a
multiple of ``-pg``. The result is rebuilt as a genuinely smaller network and saved as a model
that ``train`` retrains.

Deviation from TAO: the kernel is scored with its BatchNorm folded in
(``||W_i|| * |gamma_i| / sqrt(var_i + eps)``, the kernel the exported graph runs). TAO scores the
raw kernel and relies on long L2-regularised training to spread the norms; after the few
epochs a CPU run trains, raw norms are all within ~30% of the maximum and nothing would be
pruned at the notebook's threshold.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from tao_kfp.cpu_backend.common import PRUNE_LOGGER, BackendError, log

CRITERIA = ("union", "intersection", "arithmetic_mean", "geometric_mean")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """TAO prune flags."""
    parser.add_argument("-m", "--model", "--pretrained_model", required=True, help="model file")
    parser.add_argument("-o", "--output_file", required=True, help="pruned model file")
    parser.add_argument("-k", "--key", default="", help="model key")
    parser.add_argument("-n", "--normalizer", choices=("max", "L2"), default="max")
    parser.add_argument("-eq", "--equalization_criterion", choices=CRITERIA, default="union")
    parser.add_argument("-pg", "--pruning_granularity", type=int, default=8)
    parser.add_argument("-pth", "--pruning_threshold", type=float, default=0.1)
    parser.add_argument("-nf", "--min_num_filters", type=int, default=16)
    parser.add_argument("-el", "--excluded_layers", nargs="*", default=[], help="layer names")
    parser.add_argument("--results_dir", default=None, help="ignored (TAO 5.0 status.json)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list kept filters")


def run(args: argparse.Namespace) -> int:
    """Prunes ``-m`` into ``-o`` and logs the parameter ratio; returns 0."""
    from tao_kfp.cpu_backend.checkpoint import load_checkpoint, save_checkpoint
    from tao_kfp.cpu_backend.model import count_params

    if args.pruning_granularity < 1 or args.min_num_filters < 1:
        raise BackendError("-pg and -nf must be >= 1")
    if args.tao_version == "5" and not args.output_file.endswith(".hdf5"):
        # TAO 5.0 saves to "<-o>.hdf5" and then reads the size of the literal -o path
        # (tao_tensorflow1_backend 5.0 common/magnet_prune.py:231-245): it crashes.
        raise BackendError(
            f"TAO 5.0 prune saves {args.output_file}.hdf5 and then reads {args.output_file}, "
            "which does not exist: give -o a path ending in .hdf5 (tao.version 5 does)."
        )
    checkpoint = load_checkpoint(args.model, args.key)
    model = checkpoint.build_model()
    pruned, kept = prune_model(
        model,
        threshold=args.pruning_threshold,
        normalizer=args.normalizer,
        criterion=args.equalization_criterion,
        granularity=args.pruning_granularity,
        min_filters=args.min_num_filters,
        excluded=args.excluded_layers,
    )
    if args.verbose:
        for name, indices in kept.items():
            log(
                f"{name}: keeping {len(indices)}/{model.arch['widths'][name]} filters",
                name=PRUNE_LOGGER,
            )
    save_checkpoint(args.output_file, model=pruned, classmap=checkpoint.classmap, key=args.key)
    ratio = count_params(pruned)[0] / count_params(model)[0]
    log(f"Pruning ratio (pruned model / original model): {ratio}", name=PRUNE_LOGGER)
    return 0


def residual_groups(arch: dict) -> list[list[str]]:
    """Conv layers whose outputs are added together, one list per group (singletons included).

    A block's output is ``conv_2 + shortcut``; an identity shortcut carries the previous
    block's output, so the group grows along chains of identity blocks.
    """
    from tao_kfp.cpu_backend.model import block_layout, has_projection

    parent = {name: name for name in arch["widths"]}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    previous_output = "conv1"
    for _stage, block, _first in block_layout(arch["n_layers"]):
        partner = f"{block}_conv_shortcut" if has_projection(arch, block) else previous_output
        parent[find(f"{block}_conv_2")] = find(partner)
        previous_output = f"{block}_conv_2"
    groups: dict[str, list[str]] = {}
    for name in arch["widths"]:
        groups.setdefault(find(name), []).append(name)
    return list(groups.values())


def layer_inputs(arch: dict) -> dict[str, str | None]:
    """For each conv layer and ``predictions``: the conv whose output it reads (None = image)."""
    from tao_kfp.cpu_backend.model import block_layout

    inputs: dict[str, str | None] = {"conv1": None}
    previous_output = "conv1"
    for _stage, block, _first in block_layout(arch["n_layers"]):
        inputs[f"{block}_conv_1"] = previous_output
        inputs[f"{block}_conv_shortcut"] = previous_output
        inputs[f"{block}_conv_2"] = f"{block}_conv_1"
        previous_output = f"{block}_conv_2"
    inputs["predictions"] = previous_output
    return {
        name: source
        for name, source in inputs.items()
        if name in arch["widths"] or name == "predictions"
    }


def filter_scores(unit: Any, normalizer: str) -> Any:
    """Per-filter norms of a conv unit's kernel (BatchNorm folded in), normalised per layer."""
    import torch

    with torch.no_grad():
        norms = unit.conv.weight.flatten(1).norm(dim=1)
        if unit.bn is not None:
            norms = norms * unit.bn.weight.abs() / torch.sqrt(unit.bn.running_var + unit.bn.eps)
        if normalizer == "L2":  # TAO: stat / sqrt(sum(stat**2)) * len(stat)
            return norms / torch.clamp(norms.norm(), min=1e-12) * len(norms)
        return norms / torch.clamp(norms.max(), min=1e-12)


def merge_scores(scores: list, criterion: str) -> Any:
    """Combines the scores of a residual group into one score per channel."""
    import torch

    stacked = torch.stack(scores)
    if criterion == "union":
        return stacked.max(dim=0).values
    if criterion == "intersection":
        return stacked.min(dim=0).values
    if criterion == "arithmetic_mean":
        return stacked.mean(dim=0)
    return torch.exp(torch.log(stacked.clamp(min=1e-12)).mean(dim=0))  # geometric_mean


def channels_to_keep(
    scores: Any, threshold: float, granularity: int, min_filters: int
) -> list[int]:
    """Indices of the filters kept, as TAO's ``_get_retained_idx`` picks them.

    The count is the number of scores above ``threshold``, at least ``min_filters``, rounded up
    to a multiple of ``granularity``; the highest-scoring filters are kept.
    """
    total = len(scores)
    count = max(min(min_filters, total), int((scores > threshold).sum()))
    count = min(math.ceil(count / granularity) * granularity, total)
    best = scores.argsort(descending=True)[:count]
    return sorted(int(i) for i in best)


def prune_model(
    model: Any,
    *,
    threshold: float,
    normalizer: str = "max",
    criterion: str = "union",
    granularity: int = 8,
    min_filters: int = 16,
    excluded: list[str] = (),
) -> tuple[Any, dict[str, list[int]]]:
    """Returns the pruned network and, per conv layer, the indices of the filters it kept."""
    from tao_kfp.cpu_backend.model import ResNet

    arch = model.arch
    units = model.conv_units()
    unknown = sorted(set(excluded) - set(units) - {"predictions"})
    if unknown:
        log(
            f"excluded layers {unknown} are not conv layers of this model; "
            f"known: {', '.join(units)}",
            name=PRUNE_LOGGER,
            level="WARNING",
        )
    kept: dict[str, list[int]] = {}
    for group in residual_groups(arch):
        width = arch["widths"][group[0]]
        if set(group) & set(excluded):
            indices = list(range(width))
        else:
            scores = [filter_scores(units[name], normalizer) for name in group]
            merged = merge_scores(scores, criterion)
            indices = channels_to_keep(merged, threshold, granularity, min_filters)
        for name in group:
            kept[name] = indices

    new_arch = dict(arch, widths={name: len(kept[name]) for name in arch["widths"]}, pruned=True)
    pruned = ResNet(new_arch)
    new_units = pruned.conv_units()
    inputs = layer_inputs(arch)
    in_channels = arch["input_shape"][0]
    for name, unit in units.items():
        source = inputs[name]
        in_index = list(range(in_channels)) if source is None else kept[source]
        _copy_unit(unit, new_units[name], kept[name], in_index)
    last = kept[inputs["predictions"]]
    pruned.predictions.weight.data.copy_(model.predictions.weight.data[:, last])
    pruned.predictions.bias.data.copy_(model.predictions.bias.data)
    return pruned.eval(), kept


def _copy_unit(old: Any, new: Any, out_index: list[int], in_index: list[int]) -> None:
    """Copies the kept output filters (and their input channels) of a conv + BatchNorm."""
    new.conv.weight.data.copy_(old.conv.weight.data[out_index][:, in_index])
    if old.conv.bias is not None:
        new.conv.bias.data.copy_(old.conv.bias.data[out_index])
    if old.bn is not None:
        for attr in ("weight", "bias", "running_mean", "running_var"):
            getattr(new.bn, attr).data.copy_(getattr(old.bn, attr).data[out_index])
        new.bn.num_batches_tracked.copy_(old.bn.num_batches_tracked)
