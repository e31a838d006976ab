"""``train``: TAO 3.x ``classification train`` on CPU.

Writes ``<-r>/classmap.json``, ``<-r>/training.csv`` and ``<-r>/weights/<arch>_<epoch:03d>.tlt``
per epoch and prints Keras-style progress and TAO's final log lines. Like TAO it keeps every
epoch's checkpoint; with ``TAO_KFP_KEEP_CHECKPOINTS=last-best`` (what ``run-local`` sets by
default, to save disk) only the last and the best (highest val_acc). The pipeline reads the last.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import time
from pathlib import Path
from typing import Any, Optional

from tao_kfp.cpu_backend.common import BackendError, log, say

CSV_COLUMNS = ("epoch", "acc", "loss", "lr", "val_acc", "val_loss")
# "all" (default, as TAO) or "last-best": which per-epoch checkpoints train keeps.
KEEP_CHECKPOINTS_ENV = "TAO_KFP_KEEP_CHECKPOINTS"
KERAS_EPSILON = 1e-7  # Keras clips probabilities to [eps, 1 - eps] in crossentropy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """TAO 3.x train flags."""
    parser.add_argument("-e", "--experiment_spec_file", required=True, help="experiment spec")
    parser.add_argument("-r", "--results_dir", required=True, help="output folder")
    parser.add_argument("-k", "--key", default="", help="model key (checks .tlt files)")
    parser.add_argument("--init_epoch", type=int, default=1, help="epoch to resume from (1-based)")
    parser.add_argument("-c", "--classmap", default=None, help="JSON {class: index} (TAO 5.0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more output")


def run(args: argparse.Namespace) -> int:
    """Runs training; returns 0."""
    from tao_kfp.cpu_backend.common import CHECKPOINT_EXTENSION, load_experiment_spec

    spec = load_experiment_spec(args.experiment_spec_file, task="train")
    train(
        spec,
        results_dir=Path(args.results_dir),
        key=args.key,
        init_epoch=args.init_epoch,
        classmap_path=args.classmap,
        checkpoint_extension=CHECKPOINT_EXTENSION[args.tao_version],
    )
    return 0


# ---------------------------------------------------------------------------------------------
# Learning rate: the formulas of TAO's makenet schedulers (progress = step / max_iterations).
# ---------------------------------------------------------------------------------------------


def learning_rate(lr_config: Any, step: int, max_iterations: int) -> float:
    """The learning rate TAO's scheduler sets after ``step`` iterations."""
    progress = min(step / max(max_iterations, 1), 1.0)
    kind = lr_config.WhichOneof("lr_scheduler")
    if kind == "step":
        cfg = lr_config.step
        # StepLRScheduler: a smooth exponential decay by gamma every step_size % of training.
        num_steps = max(max_iterations * cfg.step_size // 100, 1)
        return cfg.learning_rate * cfg.gamma ** (step / num_steps)
    if kind == "soft_anneal":
        cfg = lr_config.soft_anneal
        # MultiGPULearningRateScheduler: linear warm-up from a fixed 3e-4, then divide the rate
        # at each annealing point.
        start_lr = 3e-4
        if cfg.soft_start > 0 and progress < cfg.soft_start:
            fraction = progress / cfg.soft_start
            return fraction * cfg.learning_rate + (1.0 - fraction) * start_lr
        lr = cfg.learning_rate
        for point in cfg.annealing_points:
            if progress > point:
                lr /= cfg.annealing_divider or 1.0
        return lr
    if kind == "cosine":
        cfg = lr_config.cosine
        # SoftStartCosineAnnealingScheduler, including TAO's un-normalised cosine phase.
        min_lr = cfg.learning_rate * cfg.min_lr_ratio
        warm = progress / cfg.soft_start if cfg.soft_start > 0 else 1.0
        if warm < 1:
            return (cfg.learning_rate - min_lr) * warm + min_lr
        phase = math.pi * (progress - cfg.soft_start)
        return min_lr + (cfg.learning_rate - min_lr) * (1 + math.cos(phase)) / 2
    raise BackendError(
        "train_config.lr_config must contain step, soft_anneal or cosine, "
        "e.g. lr_config { step { learning_rate: 0.006 step_size: 10 gamma: 0.1 } }"
    )


def build_optimizer(optimizer_config: Any, params: list) -> tuple[Any, float]:
    """The torch optimizer for ``optimizer { sgd | adam | rmsprop }`` and its Keras decay."""
    import torch

    kind = optimizer_config.WhichOneof("optim")
    if kind == "sgd":
        cfg = optimizer_config.sgd
        nesterov = cfg.nesterov and cfg.momentum > 0
        optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=nesterov)
    elif kind == "adam":
        cfg = optimizer_config.adam
        betas = (cfg.beta_1 or 0.9, cfg.beta_2 or 0.999)
        optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=betas, eps=cfg.epsilon or 1e-7)
    elif kind == "rmsprop":
        cfg = optimizer_config.rmsprop
        optimizer = torch.optim.RMSprop(
            params, lr=cfg.lr, alpha=cfg.rho or 0.9, eps=cfg.epsilon or 1e-7
        )
    else:
        raise BackendError(
            "train_config.optimizer must contain sgd, adam or rmsprop, "
            "e.g. optimizer { sgd { lr: 0.01 momentum: 0.9 } }"
        )
    return optimizer, cfg.decay


# ---------------------------------------------------------------------------------------------
# Loss pieces
# ---------------------------------------------------------------------------------------------


def regularized_weights(model: Any, reg_config: Any) -> tuple[str, float, list]:
    """``(type, weight_decay, kernels)`` for ``reg_config``; Keras regularises kernels only."""
    import torch

    kind = reg_config.type or "None"
    if kind == "None" or reg_config.weight_decay <= 0:
        return "None", 0.0, []
    if kind not in ("L1", "L2"):
        raise BackendError(f"train_config.reg_config.type must be L1, L2 or None (got {kind!r})")
    scope = {part.strip() for part in reg_config.scope.split(",") if part.strip()}
    layer_types = {"Conv2D": torch.nn.Conv2d, "Dense": torch.nn.Linear}
    unknown = scope - set(layer_types)
    if unknown:
        log(
            f"reg_config.scope entries {sorted(unknown)} are not regularised by the CPU backend "
            "(it knows Conv2D and Dense)",
            level="WARNING",
        )
    types = tuple(layer_types[name] for name in scope & set(layer_types))
    kernels = [m.weight for m in model.modules() if types and isinstance(m, types)]
    return kind, reg_config.weight_decay, kernels


def regularization_loss(reg: tuple[str, float, list]) -> Any:
    """Keras' l1/l2 penalty: ``weight_decay * sum(|w|)`` or ``weight_decay * sum(w**2)``."""
    kind, weight_decay, kernels = reg
    if not kernels:
        return 0.0
    if kind == "L1":
        return weight_decay * sum(k.abs().sum() for k in kernels)
    return weight_decay * sum(k.pow(2).sum() for k in kernels)


def crossentropy(probabilities: Any, targets: Any) -> Any:
    """Keras categorical crossentropy on probabilities (clipped), averaged over the batch."""
    import torch

    clipped = probabilities.clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON)
    return -(targets * torch.log(clipped)).sum(dim=1).mean()


# ---------------------------------------------------------------------------------------------
# Model setup
# ---------------------------------------------------------------------------------------------


def build_model(spec: Any, num_classes: int, key: str) -> Any:
    """Builds the network from the spec, or from a pruned pretrained model, and loads weights."""
    from tao_kfp.cpu_backend.checkpoint import load_checkpoint
    from tao_kfp.cpu_backend.common import input_shape
    from tao_kfp.cpu_backend.model import SUPPORTED_ARCHS, ResNet, default_arch

    mc = spec.model_config
    if mc.arch not in SUPPORTED_ARCHS:
        raise BackendError(
            f"model_config.arch: the CPU backend implements {', '.join(SUPPORTED_ARCHS)} "
            f"(got {mc.arch!r})"
        )
    shape = input_shape(spec)
    pretrained_path = spec.train_config.pretrained_model_path
    pretrained = load_checkpoint(pretrained_path, key) if pretrained_path else None

    if pretrained is not None and pretrained.arch.get("pruned"):
        # A pruned model keeps its own (smaller) layer widths: rebuild it as stored.
        arch = dict(pretrained.arch, input_shape=list(shape))
        if (
            arch["num_classes"] != num_classes
            or arch["input_shape"][0] != pretrained.arch["input_shape"][0]
        ):
            raise BackendError(
                f"pruned model {pretrained_path} has {pretrained.arch['num_classes']} classes and "
                f"{pretrained.arch['input_shape'][0]} channels; the dataset has {num_classes} "
                f"classes and the spec {shape[0]} channels"
            )
        model = ResNet(arch)
        model.load_state_dict(pretrained.state_dict)
        log(f"Loaded pruned model {pretrained_path} for retraining")
    else:
        bn = mc.batch_norm_config if mc.HasField("batch_norm_config") else None
        arch = default_arch(
            n_layers=mc.n_layers or 18,
            input_shape=shape,
            num_classes=num_classes,
            use_batch_norm=mc.use_batch_norm,
            use_bias=mc.use_bias,
            all_projections=mc.all_projections,
            use_pooling=mc.use_pooling,
            dropout=mc.dropout,
            bn_momentum=(bn.momentum if bn and bn.momentum else 0.9),
            bn_epsilon=(bn.epsilon if bn and bn.epsilon else 1e-5),
        )
        model = ResNet(arch)
        if pretrained is not None:
            own = model.state_dict()
            matching = {
                name: tensor
                for name, tensor in pretrained.state_dict.items()
                if name in own and own[name].shape == tensor.shape
            }
            model.load_state_dict(matching, strict=False)
            log(f"Loaded {len(matching)}/{len(own)} weight tensors from {pretrained_path}")
    model.freeze(sorted(set(mc.freeze_blocks)), mc.freeze_bn)
    return model


def read_classmap(path: str) -> list[str]:
    """Class names ordered by index from a ``{"class": index}`` JSON file."""
    try:
        classmap = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise BackendError(f"cannot read class map {path}: {error}") from None
    if not isinstance(classmap, dict) or sorted(classmap.values()) != list(range(len(classmap))):
        raise BackendError(f"class map {path} must be a JSON object {{class: 0..K-1}}")
    return [name for name, _ in sorted(classmap.items(), key=lambda item: item[1])]


# ---------------------------------------------------------------------------------------------
# Training loop
# ---------------------------------------------------------------------------------------------


def _seed_everything(seed: int) -> Any:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _augment(images: Any, image_format: Any, tc: Any, generator: Any) -> Any:
    """Random crop and horizontal flip of a uint8 batch, then preprocessing."""
    import torch

    height, width = image_format.height, image_format.width
    if images.shape[2] != height or images.shape[3] != width:  # stored larger: random crop
        tops = torch.randint(0, images.shape[2] - height + 1, (len(images),), generator=generator)
        lefts = torch.randint(0, images.shape[3] - width + 1, (len(images),), generator=generator)
        images = torch.stack(
            [img[:, t : t + height, s : s + width] for img, t, s in zip(images, tops, lefts)]
        )
    x = image_format.preprocess(images)
    if not tc.disable_horizontal_flip:
        flip = torch.rand(len(x), generator=generator) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    return x


def _targets(labels: Any, x: Any, num_classes: int, tc: Any, generator: Any) -> tuple[Any, Any]:
    """One-hot targets with label smoothing, then mixup of inputs and targets."""
    import torch

    targets = torch.nn.functional.one_hot(labels, num_classes).float()
    if tc.label_smoothing > 0:
        targets = targets * (1.0 - tc.label_smoothing) + tc.label_smoothing / num_classes
    if tc.mixup_alpha > 0:
        beta = torch.distributions.Beta(tc.mixup_alpha, tc.mixup_alpha)
        lam = beta.sample((len(x),))
        order = torch.randperm(len(x), generator=generator)
        x = lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * x[order]
        targets = lam.view(-1, 1) * targets + (1 - lam.view(-1, 1)) * targets[order]
    return x, targets


def _validate(model: Any, val_set: Any, image_format: Any, reg: tuple) -> tuple[float, float]:
    """``(val_loss, val_acc)`` like Keras: crossentropy plus the regularisation penalty."""
    import torch

    from tao_kfp.cpu_backend.model import predict

    probabilities = predict(model, val_set.images, image_format.preprocess)
    targets = torch.nn.functional.one_hot(val_set.labels, probabilities.shape[1]).float()
    with torch.no_grad():
        loss = float(crossentropy(probabilities, targets) + regularization_loss(reg))
    accuracy = float((probabilities.argmax(1) == val_set.labels).float().mean())
    return loss, accuracy


def keep_checkpoints_policy() -> str:
    """The checkpoint retention asked for in ``TAO_KFP_KEEP_CHECKPOINTS`` (default all)."""
    import os

    policy = os.environ.get(KEEP_CHECKPOINTS_ENV, "") or "all"
    if policy not in ("last-best", "all"):
        raise BackendError(f"{KEEP_CHECKPOINTS_ENV} must be last-best or all (got {policy!r})")
    return policy


def prune_checkpoints(written: list, kept: set) -> list:
    """Deletes the checkpoints this run ``written`` that are not ``kept``; returns the rest."""
    for path in written:
        if path not in kept:
            path.unlink(missing_ok=True)
    return [path for path in written if path in kept]


def train(
    spec: Any,
    *,
    results_dir: Path,
    key: str,
    init_epoch: int = 1,
    classmap_path: Optional[str] = None,
    checkpoint_extension: str = "tlt",
) -> dict:
    """Trains as TAO does and returns the final ``{"val_loss", "val_acc"}``."""
    import torch

    from tao_kfp.cpu_backend.checkpoint import save_checkpoint
    from tao_kfp.cpu_backend.common import use_all_cores
    from tao_kfp.cpu_backend.data import ImageFormat, list_class_folders, load_image_set
    from tao_kfp.cpu_backend.model import format_summary

    use_all_cores()
    tc, mc = spec.train_config, spec.model_config
    generator = _seed_everything(tc.random_seed)
    image_format = ImageFormat.from_spec(spec)
    if init_epoch < 1 or init_epoch > tc.n_epochs:
        raise BackendError(f"--init_epoch must be between 1 and n_epochs={tc.n_epochs}")
    if init_epoch > 1 and not tc.pretrained_model_path:
        raise BackendError(
            "--init_epoch > 1 resumes training: set train_config.pretrained_model_path to the "
            "checkpoint of the epoch before it"
        )

    # Like TAO: the model (and its summary) first, then the image iterators print "Found ...".
    class_names = read_classmap(classmap_path) if classmap_path else None
    class_names = class_names or list_class_folders(tc.train_dataset_path)
    val_classes = list_class_folders(tc.val_dataset_path)
    if len(class_names) < 2:
        raise BackendError(f"{tc.train_dataset_path} needs at least 2 class folders")
    if not classmap_path and class_names != val_classes:
        raise BackendError(
            f"train and val class folders differ: {class_names} in {tc.train_dataset_path} "
            f"vs {val_classes} in {tc.val_dataset_path}"
        )
    num_classes = len(class_names)
    classmap = {name: index for index, name in enumerate(class_names)}
    model = build_model(spec, num_classes, key).to(memory_format=torch.channels_last)
    say(format_summary(model))

    train_crop = (
        "random" if tc.enable_random_crop else ("center" if tc.enable_center_crop else "none")
    )
    val_crop = "center" if tc.enable_center_crop else "none"
    train_set = load_image_set(
        tc.train_dataset_path, image_format, crop=train_crop, class_names=class_names
    )
    val_set = load_image_set(
        tc.val_dataset_path, image_format, crop=val_crop, class_names=class_names
    )
    if len(train_set) == 0 or len(val_set) == 0:
        raise BackendError("train and val folders must each contain images")

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer, decay = build_optimizer(tc.optimizer, trainable)
    reg = regularized_weights(model, tc.reg_config)

    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "classmap.json").write_text(json.dumps(classmap))
    weights_dir = results_dir / "weights"
    weights_dir.mkdir(exist_ok=True)
    csv_path = results_dir / "training.csv"
    resume = init_epoch > 1 and csv_path.is_file()
    csv_file = open(csv_path, "a" if resume else "w", newline="")  # closed in the finally below
    writer = csv.writer(csv_file)
    if not resume:
        writer.writerow(CSV_COLUMNS)

    batch_size = tc.batch_size_per_gpu
    n_train = len(train_set)
    steps_per_epoch = math.ceil(n_train / batch_size)
    max_iterations = steps_per_epoch * tc.n_epochs
    global_step = (init_epoch - 1) * steps_per_epoch
    lr = learning_rate(tc.lr_config, global_step, max_iterations)
    val_loss = val_acc = float("nan")
    keep_all = keep_checkpoints_policy() == "all"
    best: Optional[tuple] = None  # (val_acc, checkpoint) of the best epoch so far
    written: list = []  # only this run's checkpoints are candidates for deletion
    try:
        for epoch in range(init_epoch, tc.n_epochs + 1):
            say(f"Epoch {epoch}/{tc.n_epochs}")
            model.train()
            started = time.perf_counter()
            order = torch.randperm(n_train, generator=generator)
            loss_sum = correct = seen = 0.0
            for step in range(steps_per_epoch):
                index = order[step * batch_size : (step + 1) * batch_size]
                if len(index) < 2 and n_train >= 2:  # BatchNorm needs two images per batch
                    continue
                x = _augment(train_set.images[index], image_format, tc, generator)
                x, targets = _targets(train_set.labels[index], x, num_classes, tc, generator)
                for group in optimizer.param_groups:
                    group["lr"] = lr / (1.0 + decay * global_step)  # Keras optimizer decay
                probabilities = torch.softmax(
                    model(x.contiguous(memory_format=torch.channels_last)), 1
                )
                loss = crossentropy(probabilities, targets) + regularization_loss(reg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                global_step += 1
                lr = learning_rate(tc.lr_config, global_step, max_iterations)
                loss_sum += float(loss.detach()) * len(index)
                correct += float((probabilities.argmax(1) == targets.argmax(1)).sum())
                seen += len(index)
            train_loss, train_acc = loss_sum / max(seen, 1), correct / max(seen, 1)
            val_loss, val_acc = _validate(model, val_set, image_format, reg)
            seconds = time.perf_counter() - started
            say(
                f"{steps_per_epoch}/{steps_per_epoch} [==============================] - "
                f"{seconds:.0f}s {1000 * seconds / steps_per_epoch:.0f}ms/step - "
                f"loss: {train_loss:.4f} - acc: {train_acc:.4f} - "
                f"val_loss: {val_loss:.4f} - val_acc: {val_acc:.4f}"
            )
            checkpoint = weights_dir / f"{mc.arch}_{epoch:03d}.{checkpoint_extension}"
            save_checkpoint(checkpoint, model=model, classmap=classmap, key=key, epoch=epoch)
            written.append(checkpoint)
            if best is None or val_acc > best[0]:
                best = (val_acc, checkpoint)
            if not keep_all:
                written = prune_checkpoints(written, {checkpoint, best[1]})
            writer.writerow([epoch, train_acc, train_loss, lr, val_acc, val_loss])
            csv_file.flush()
    finally:
        csv_file.close()

    log(f"Total Val Loss: {val_loss}")
    log(f"Total Val accuracy: {val_acc}")
    log("Training finished successfully.")
    return {"val_loss": val_loss, "val_acc": val_acc}
