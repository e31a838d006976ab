"""Step 1: check every run parameter and the dataset, then render this run's TAO spec files.

Everything that can be checked before a GPU is claimed is checked here, and all problems
are reported together, each saying what is wrong and how to fix it.

Dataset rule (class_folders): ``train/``, ``val/`` and ``test/`` exist with the same class
folders, none hidden (Keras would read them as classes), at least 2 classes; images are
counted as TAO's Keras loader finds them (``dataset.scan_class_folders``); every class has at
least ``MIN_TRAIN_PER_CLASS`` images in train and at least 1 in val and in test; the train
split holds at least ``batch_size`` images in total (one full batch: training and INT8
calibration need one). Every image of
every split is decoded with Pillow, in parallel (``check_images``), so a corrupt file fails the
run here and not hours later in evaluate; the error names each bad file. For ``voc`` the same
rule is applied to the split that the prepare step will produce.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from tao_kfp import dataset
from tao_kfp.routes import tf1
from tao_kfp.steps.common import RUN_LAYOUT
from tao_kfp.tao import LAUNCHER_SAFE_CHARACTERS

DATASET_FORMATS = ("class_folders", "voc")
DEFAULT_BASE_SPEC = "specs/classification_spec.cfg"
PRETRAINED_CACHE = "models/pretrained"
MIN_TRAIN_PER_CLASS = 2
BAD_IMAGES_LISTED = 20
# Decoding at reduced size is enough to find truncated or corrupt data: JPEG decodes at up to
# 1/8 scale (Pillow's draft mode), other formats decode fully.
DRAFT_SIZE = (64, 64)
MAX_GPUS = 16
# org/model:version or org/team/model:version, as `ngc registry model download-version` takes.
NGC_REF_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){1,2}:[A-Za-z0-9_.-]+$")
MODEL_EXTENSIONS = (".hdf5", ".tlt")

# Spec fields the run form (or the pipeline) owns; setting them in spec_overrides would be
# silently overwritten, so it is an error that names the run parameter to use instead.
RESERVED_OVERRIDES = {
    "train_config.n_epochs": "epochs / retrain_epochs",
    "train_config.batch_size_per_gpu": "batch_size",
    "train_config.train_dataset_path": "dataset_path",
    "train_config.val_dataset_path": "dataset_path",
    "eval_config.eval_dataset_path": "dataset_path",
    "train_config.pretrained_model_path": "pretrained_model",
    "eval_config.model_path": "(set by the pipeline)",
}


class InputError(ValueError):
    """One or more run parameters are invalid; the message lists every problem and its fix."""


@dataclass
class RunPlan:
    """Paths decided for this run; each becomes an output of step 1."""

    run_dir: str
    dataset_source: str
    dataset_dir: str
    train_spec: str
    retrain_spec: str
    pruned_model: str
    pretrained_source: str
    pretrained_cache: str


def resolve_in_workspace(value: str, workspace: Path) -> Path:
    """Resolves ``value`` (absolute, relative to the workspace, or ``file://``) to a path."""
    if value.startswith("file://"):
        value = value[len("file://") :]
    path = Path(value)
    if not path.is_absolute():
        path = workspace / path
    return Path(_normalise(path))


def _normalise(path: Path) -> str:
    # Lexical, not realpath: ".." cannot escape, but a symlink inside the workspace may point
    # elsewhere (the local demo links a dataset in; on a cluster the pod must see the target).
    return os.path.normpath(os.path.abspath(path))


def is_inside(path: Path, workspace: Path) -> bool:
    """True when ``path`` (already resolved) lies under the workspace root."""
    root = Path(_normalise(workspace))
    return path == root or root in path.parents


def _flatten(data: Dict[str, Any], prefix: str = "") -> List[str]:
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            keys.extend(_flatten(value, dotted + "."))
        keys.append(dotted)
    return keys


def check_numbers(
    *,
    epochs: Dict[str, int],
    batch_size: int,
    learning_rate: float,
    num_gpus: str,
    prune_threshold: Optional[float] = None,
) -> List[str]:
    """Range checks of the numeric run parameters (``epochs``: {parameter name: value})."""
    errors = []
    for name, value in epochs.items():
        if value < 1:
            errors.append(f"{name} must be >= 1 (got {value}); set the number of epochs to run.")
    if batch_size < 1:
        errors.append(f"batch_size must be >= 1 (got {batch_size}); the notebook uses 64.")
    if not learning_rate > 0:
        errors.append(f"learning_rate must be > 0 (got {learning_rate}); the notebook uses 0.006.")
    if prune_threshold is not None and not 0 < prune_threshold <= 1:
        errors.append(
            f"prune_threshold must be in (0, 1] (got {prune_threshold}); higher prunes more, "
            "the notebook uses 0.6."
        )
    # Text, because KFP's driver resolves a GPU-count placeholder only from a string value; the
    # pod's limit gets this exact text, so it must be plain digits.
    if not (re.fullmatch(r"[0-9]+", str(num_gpus)) and 1 <= int(num_gpus) <= MAX_GPUS):
        errors.append(
            f"num_gpus must be a whole number from 1 to {MAX_GPUS}, digits only (got "
            f"{num_gpus!r}); it is the GPU limit of train and retrain and TAO's --gpus."
        )
    return errors


def image_problem(image: Path) -> Optional[str]:
    """Why ``image`` cannot be used for training (decoded in full), or None when it can."""
    from PIL import Image

    try:
        with Image.open(image) as handle:
            handle.draft("RGB", DRAFT_SIZE)  # JPEG only: decode scaled down, still every byte
            handle.load()
    except Exception as error:  # Pillow raises many types for bad files
        return f"{image}: {error}"
    return None


def check_images(images: List[Path], workers: Optional[int] = None) -> List[str]:
    """Decodes every image in parallel; returns one problem per bad file, in input order.

    Threads suffice: Pillow releases the GIL while it reads and decodes. ``workers`` defaults
    to the CPUs this process may use.
    """
    from concurrent.futures import ThreadPoolExecutor

    workers = workers or len(os.sched_getaffinity(0))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [p for p in pool.map(image_problem, images, chunksize=64) if p]


def _bad_images_error(problems: List[str]) -> str:
    shown = "; ".join(problems[:BAD_IMAGES_LISTED])
    more = (
        f" (and {len(problems) - BAD_IMAGES_LISTED} more)"
        if len(problems) > BAD_IMAGES_LISTED
        else ""
    )
    return f"{len(problems)} unreadable image(s), replace or delete them: {shown}{more}"


def _check_counts(counts: Dict[str, Dict[str, int]], batch_size: int, where: str) -> List[str]:
    """Applies the per-class minimum rule to ``{split: {class: n}}``."""
    errors = []
    minimum = {"train": MIN_TRAIN_PER_CLASS, "val": 1, "test": 1}
    for split, need in minimum.items():
        short = {c: n for c, n in counts.get(split, {}).items() if n < need}
        if short:
            listed = ", ".join(f"{c} ({n})" for c, n in sorted(short.items()))
            errors.append(
                f"{where}: {split} needs at least {need} image(s) per class; too few in: "
                f"{listed}. Add images or drop those classes from every split."
            )
    total_train = sum(counts.get("train", {}).values())
    if total_train < batch_size:
        errors.append(
            f"{where}: train holds {total_train} images but batch_size is {batch_size}; "
            "training and INT8 calibration need at least one full batch. Lower batch_size "
            "or add images."
        )
    return errors


def check_class_folders(root: Path, batch_size: int) -> List[str]:
    """Checks a ``train/val/test/<class>/`` dataset (layout, classes, counts, readable images)."""
    missing = [s for s in dataset.SPLITS if not (root / s).is_dir()]
    if missing:
        return [
            f"dataset {root} lacks {', '.join(s + '/' for s in missing)}: a class_folders "
            "dataset needs train/, val/ and test/, each with one folder per class. For a "
            "Pascal VOC 2012 folder set dataset_format=voc."
        ]
    layout = dataset.scan_class_folders(root)
    errors = []
    hidden = sorted(
        f"{split}/{name}"
        for split, classes in layout.items()
        for name in classes
        if name.startswith(".")
    )
    if hidden:
        errors.append(
            f"dataset {root} has hidden folders {hidden} where class folders go: TAO's Keras "
            "loader reads every folder of a split as a class, hidden ones too, so it would "
            "train them as extra classes. Delete them (e.g. Jupyter's .ipynb_checkpoints)."
        )
        layout = {
            split: {name: images for name, images in classes.items() if not name.startswith(".")}
            for split, classes in layout.items()
        }
    class_sets = {split: set(classes) for split, classes in layout.items()}
    if len(set(map(frozenset, class_sets.values()))) > 1:
        union = set().union(*class_sets.values())
        for split, classes in class_sets.items():
            lacking = sorted(union - classes)
            if lacking:
                errors.append(
                    f"dataset {root}/{split} lacks class folders {lacking}; train, val and "
                    "test must have the same class folders."
                )
    if len(class_sets["train"]) < 2:
        errors.append(
            f"dataset {root}/train has {len(class_sets['train'])} class folder(s); "
            "classification needs at least 2."
        )
    counts = {s: {c: len(imgs) for c, imgs in classes.items()} for s, classes in layout.items()}
    errors += _check_counts(counts, batch_size, f"dataset {root}")
    unreadable = check_images(
        [image for classes in layout.values() for images in classes.values() for image in images]
    )
    if unreadable:
        errors.append(_bad_images_error(unreadable))
    return errors


def check_voc(root: Path, batch_size: int) -> List[str]:
    """Checks a Pascal VOC 2012 folder and the split the prepare step will make of it."""
    if not (root / "JPEGImages").is_dir() or not (root / "ImageSets" / "Main").is_dir():
        return [
            f"dataset {root} is not a Pascal VOC 2012 folder: it needs JPEGImages/ and "
            "ImageSets/Main/ (point dataset_path at VOCdevkit/VOC2012)."
        ]
    classes = dataset.voc_class_lists(root)
    if len(classes) < 2:
        return [f"{root}/ImageSets/Main has {len(classes)} *_trainval.txt list(s); need >= 2."]
    counts: Dict[str, Dict[str, int]] = {s: {} for s in dataset.SPLITS}
    for name, ids in classes.items():
        for split, n in zip(dataset.SPLITS, dataset.split_counts(len(ids))):
            counts[split][name] = n
    errors = _check_counts(counts, batch_size, f"VOC dataset {root} after the 70/10/20 split")
    missing, present = [], set()
    for name, ids in classes.items():
        for image_id in sorted(ids):
            image = root / "JPEGImages" / f"{image_id}.jpg"
            if image in present:
                continue  # an image listed under several classes is checked once
            if image.is_file():
                present.add(image)
            else:
                missing.append(f"{image} (class {name})")
    if missing:
        errors.append(
            f"{len(missing)} image(s) listed in ImageSets but missing: "
            + "; ".join(missing[:BAD_IMAGES_LISTED])
        )
    unreadable = check_images(sorted(present))
    if unreadable:
        errors.append(_bad_images_error(unreadable))
    return errors


def classify_pretrained(
    value: str, workspace: Path, extensions: tuple = MODEL_EXTENSIONS
) -> tuple[str, List[str]]:
    """Normalises pretrained_model: "" (from scratch), an NGC ref, or an absolute file path.

    ``extensions``: the model files the route's TAO reads (TF1: .hdf5/.tlt).
    """
    value = value.strip()
    if not value:
        return "", []
    if not value.startswith(("file://", "/", ".")) and NGC_REF_PATTERN.match(value):
        candidate = workspace / value
        if not candidate.exists():
            from tao_kfp.steps.pretrained import ngcsdk_available

            if not ngcsdk_available():
                return "", [
                    f"pretrained_model {value!r} is an NGC reference, but the ngcsdk package "
                    "is not installed in the tools image. Download the model onto the "
                    "workspace and pass its path, or use an image with ngcsdk."
                ]
            return value, []
    path = resolve_in_workspace(value, workspace)
    if not is_inside(path, workspace):
        return "", [
            f"pretrained_model {value!r} resolves to {path}, outside the workspace "
            f"{workspace}; copy the model onto the workspace volume."
        ]
    if not path.is_file():
        return "", [
            f"pretrained_model {value!r}: {path} does not exist. Use an NGC reference such "
            "as nvidia/tao/pretrained_classification:resnet18, a model file on the "
            "workspace, or an empty value to train from scratch."
        ]
    if path.suffix not in extensions:
        return "", [f"pretrained_model {path} must be a {' or '.join(extensions)} file."]
    return str(path), []


def _lr_scheduler(spec) -> Optional[str]:
    fields = spec.train_config.lr_config.ListFields()
    return fields[0][0].name if fields else None


def render_specs(
    base: Path,
    overrides: Dict[str, Any],
    *,
    dataset_dir: Path,
    epochs: int,
    retrain_epochs: int,
    batch_size: int,
    learning_rate: float,
    pruned_model: str,
    specs_dir: Path,
) -> tuple[Path, Path, List[str]]:
    """Writes train.cfg and retrain.cfg into ``specs_dir``; returns them and any problems."""
    from tao_kfp import spec as spec_module

    base_spec = spec_module.load_spec(base)
    spec = spec_module.apply_overrides(base_spec, overrides) if overrides else base_spec
    scheduler = _lr_scheduler(spec)
    if scheduler is None:
        return (
            base,
            base,
            [
                f"{base} has no train_config.lr_config; add one, e.g. lr_config {{ step "
                "{ learning_rate: 0.006 step_size: 10 gamma: 0.1 } }."
            ],
        )
    common = {
        "train_config.batch_size_per_gpu": batch_size,
        f"train_config.lr_config.{scheduler}.learning_rate": learning_rate,
        "train_config.train_dataset_path": str(dataset_dir / "train"),
        "train_config.val_dataset_path": str(dataset_dir / "val"),
        "eval_config.eval_dataset_path": str(dataset_dir / "test"),
        # Each evaluate step fills in the checkpoint train/retrain actually wrote.
        "eval_config.model_path": "",
    }
    train = spec_module.apply_overrides(
        spec, {**common, "train_config.n_epochs": epochs, "train_config.pretrained_model_path": ""}
    )
    retrain = spec_module.apply_overrides(
        spec,
        {
            **common,
            "train_config.n_epochs": retrain_epochs,
            "train_config.pretrained_model_path": pruned_model,
        },
    )
    problems = []
    for name, rendered in (("train", train), ("retrain", retrain)):
        problems += [f"{name} spec: {m}" for m in spec_module.validate_spec(rendered, "train")]
    specs_dir.mkdir(parents=True, exist_ok=True)
    train_path, retrain_path = specs_dir / "train.cfg", specs_dir / "retrain.cfg"
    train_path.write_text(spec_module.dump_spec(train))
    retrain_path.write_text(spec_module.dump_spec(retrain))
    return train_path, retrain_path, problems


def _base_spec_path(base_spec: str, workspace: Path) -> tuple[Optional[Path], List[str]]:
    path = resolve_in_workspace(base_spec or DEFAULT_BASE_SPEC, workspace)
    if not is_inside(path, workspace):
        return None, [f"base_spec {base_spec!r} resolves to {path}, outside the workspace."]
    if path.is_file():
        return path, []
    if (base_spec or DEFAULT_BASE_SPEC) == DEFAULT_BASE_SPEC:
        # The chart's init Job writes it; without it, fall back to the spec this package ships.
        from tao_kfp.resources import shipped_file

        print(f"{path} not found: using the packaged notebook spec instead.", flush=True)
        return shipped_file(DEFAULT_BASE_SPEC), []
    return None, [f"base_spec {path} does not exist; give a spec file on the workspace."]


def validate_inputs(
    *,
    workspace: str,
    run_id: str,
    tao_version: str,
    dataset_path: str,
    dataset_format: str,
    pretrained_model: str,
    epochs: int,
    retrain_epochs: int,
    batch_size: int,
    learning_rate: float,
    prune_threshold: float,
    num_gpus: str,
    spec_overrides: str,
    base_spec: str,
) -> RunPlan:
    """Validates the run parameters and dataset and writes the run's spec files.

    Raises:
        InputError: Listing every problem found, each with its fix.
    """
    root = Path(workspace)
    if not root.is_dir():
        raise InputError(
            f"workspace {root} is not mounted: check workspace.claimName / mountPath in the "
            "environment config."
        )
    errors = check_numbers(
        epochs={"epochs": epochs, "retrain_epochs": retrain_epochs},
        batch_size=batch_size,
        learning_rate=learning_rate,
        prune_threshold=prune_threshold,
        num_gpus=num_gpus,
    )
    if not run_id or run_id.startswith("{{"):
        # KFP before 2.5.0 substitutes no run id (tao_kfp.kfp_backends): name the folder here,
        # unique per run, and hand it on to every step as run_dir.
        run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    if "/" in run_id:
        errors.append(f"run id {run_id!r} is not usable as a folder name.")
    run_dir = root / "experiments" / run_id
    errors += launcher_problems(workspace=workspace, run_id=run_id)

    # Dataset: where it is, and where TAO will read class folders from.
    source = resolve_in_workspace(dataset_path, root) if dataset_path.strip() else None
    dataset_dir = run_dir / RUN_LAYOUT["dataset"]
    if dataset_format not in DATASET_FORMATS:
        errors.append(
            f"dataset_format must be one of {', '.join(DATASET_FORMATS)} (got {dataset_format!r})."
        )
    elif source is None:
        errors.append("dataset_path is empty: give the dataset folder, relative to the workspace.")
    elif not is_inside(source, root):
        errors.append(f"dataset_path {dataset_path!r} resolves to {source}, outside the workspace.")
    elif not source.is_dir():
        errors.append(f"dataset_path {source} does not exist or is not a folder.")
    elif dataset_format == "class_folders":
        dataset_dir = source
        errors += check_class_folders(source, batch_size)
    else:
        errors += check_voc(source, batch_size)

    pretrained_source, problems = classify_pretrained(pretrained_model, root)
    errors += problems

    from tao_kfp import spec as spec_module

    overrides: Dict[str, Any] = {}
    try:
        overrides = spec_module.parse_overrides(spec_overrides, "spec_overrides")
    except spec_module.SpecError as error:
        errors.append(str(error))
    for key in _flatten(overrides):
        for reserved, parameter in RESERVED_OVERRIDES.items():
            if key == reserved or key.startswith(reserved + "."):
                errors.append(f"spec_overrides sets {key}; use the run parameter {parameter}.")
        if re.fullmatch(r"train_config\.lr_config\.\w+\.learning_rate", key):
            errors.append(f"spec_overrides sets {key}; use the run parameter learning_rate.")

    base, problems = _base_spec_path(base_spec, root)
    errors += problems
    if errors or base is None:
        raise InputError(_report(errors))

    line = tf1.line(tao_version)
    if "use_imagenet_head" in line.renamed_spec_fields and sets_use_imagenet_head(base, overrides):
        raise InputError(
            _report(
                [
                    "the spec sets model_config.use_imagenet_head, the TAO 3.x name; TAO 5's "
                    "proto calls it retain_head: rename it in the spec or spec_overrides."
                ]
            )
        )
    extension = line.checkpoint_extension
    pruned_model = run_dir / RUN_LAYOUT["prune"] / f"pruned_model{extension}"

    try:
        train_spec, retrain_spec, problems = render_specs(
            base,
            overrides,
            dataset_dir=dataset_dir,
            epochs=epochs,
            retrain_epochs=retrain_epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            pruned_model=str(pruned_model),
            specs_dir=run_dir / RUN_LAYOUT["specs"],
        )
    except spec_module.SpecError as error:
        raise InputError(_report([f"spec: {error}"])) from error
    if problems:
        raise InputError(_report(problems))

    plan = RunPlan(
        run_dir=str(run_dir),
        dataset_source=str(source) if dataset_format == "voc" else "",
        dataset_dir=str(dataset_dir),
        train_spec=str(train_spec),
        retrain_spec=str(retrain_spec),
        pruned_model=str(pruned_model),
        pretrained_source=pretrained_source,
        pretrained_cache=str(root / PRETRAINED_CACHE),
    )
    record = {
        "run_id": run_id,
        "parameters": {
            "dataset_path": dataset_path,
            "dataset_format": dataset_format,
            "pretrained_model": pretrained_model,
            "epochs": epochs,
            "retrain_epochs": retrain_epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "prune_threshold": prune_threshold,
            "num_gpus": num_gpus,
            "spec_overrides": spec_overrides,
            "base_spec": str(base),
        },
        "plan": asdict(plan),
    }
    (run_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2), flush=True)
    return plan


def launcher_problems(*, workspace: str, run_id: str) -> List[str]:
    """What TAO's launcher could not carry among the values that reach TAO arguments.

    Every TAO argument is a path under ``<workspace>/experiments/<run id>`` with fixed names,
    or the model key (``-k``). The dataset path reaches TAO only inside spec files, never as
    an argument, so any folder name works there. See tao.launcher_safe for the rule.
    """
    from tao_kfp.tao import MODEL_KEY_ENV, launcher_problem, launcher_safe

    problems = [
        launcher_problem(
            "the workspace path",
            workspace,
            "Mount the workspace at such a path (workspace.mountPath; run-local: --output).",
        ),
        launcher_problem("the run id", run_id, "Start the run with such an id."),
    ]
    key = os.environ.get(MODEL_KEY_ENV, "")
    if key and not launcher_safe(key):
        problems.append(
            "the model key (TAO -k) holds a character TAO's launcher cannot carry: it joins "
            "every argument into one `bash -c '...'` string and splits it again, so a space "
            "or a quote breaks every TAO step. Use a key of "
            f"{LAUNCHER_SAFE_CHARACTERS} only (secrets.modelKey / ngc.modelKey)."
        )
    return [problem for problem in problems if problem]


def sets_use_imagenet_head(base: Path, overrides: Dict[str, Any]) -> bool:
    """Whether the base spec plus overrides set ``model_config.use_imagenet_head``."""
    from tao_kfp import spec as spec_module

    try:
        spec = spec_module.apply_overrides(spec_module.load_spec(base), overrides)
    except spec_module.SpecError:
        return False  # reported by render_specs below
    return spec.model_config.use_imagenet_head


def _report(errors: List[str]) -> str:
    lines = "\n".join(f"  - {e}" for e in errors)
    return f"{len(errors)} problem(s) with this run's inputs:\n{lines}"
