"""TAO classification experiment specs: parse, override, validate and render them.

A spec is protobuf text with top-level ``model_config``, ``train_config`` and ``eval_config``.
The message types are built here from one field table (``_MESSAGES``) that mirrors TAO's
``makenet/proto/*.proto``, so ``google.protobuf.text_format`` rejects unknown fields exactly
as TAO does. ``validate_spec`` implements the TAO 5.0 validator rules plus a few checks TAO
only fails on at run time (image size format, step size percentage, ...).

``tao-kfp spec render`` is the idempotent writer used by the chart's post-install Job and
``tao-kfp spec validate`` checks a file for one task.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

SPEC_RELATIVE_PATH = "specs/classification_spec.cfg"
TASKS = ("train", "evaluate", "inference", "prune", "export")

# ---------------------------------------------------------------------------------------------
# Schema: the single field table. message -> fields as (name, type[, oneof]).
# Types: "string" | "bool" | "float" | "uint32", "repeated <scalar>", "map<string,float>",
# or the name of an enum / message below. Field numbers follow table order: they only matter
# for the binary format, which is never exchanged with TAO, and table order is the print order.
# ---------------------------------------------------------------------------------------------
_PACKAGE = "tao_kfp.spec"  # unique, so it cannot clash with any other proto package

_ENUMS: Dict[str, Tuple[str, ...]] = {
    "InterpolationMethod": ("BILINEAR", "BICUBIC"),
    "WandBMode": ("ONLINE", "OFFLINE", "DISABLED"),
}

_MESSAGES: Dict[str, Tuple[Tuple[str, ...], ...]] = {
    "Experiment": (
        ("model_config", "ModelConfig"),
        ("train_config", "TrainConfig"),
        ("eval_config", "EvalConfig"),
    ),
    "ModelConfig": (
        ("arch", "string"),
        ("input_image_size", "string"),
        ("resize_interpolation_method", "InterpolationMethod"),
        ("n_layers", "uint32"),
        ("retain_head", "bool"),
        # The 3.x docs' name (TLT 3.0 / TAO 3.22.02 specs); 5.0's proto has only retain_head.
        ("use_imagenet_head", "bool"),
        ("use_batch_norm", "bool"),
        ("use_bias", "bool"),
        ("use_pooling", "bool"),
        ("all_projections", "bool"),
        ("freeze_bn", "bool"),
        ("freeze_blocks", "repeated uint32"),
        ("dropout", "float"),
        ("batch_norm_config", "BatchNormConfig"),
        ("activation", "Activation"),
        ("byom_model", "string"),
    ),
    "BatchNormConfig": (("momentum", "float"), ("epsilon", "float")),
    "Activation": (
        ("activation_type", "string"),
        ("activation_parameters", "map<string,float>"),
    ),
    "TrainConfig": (
        ("train_dataset_path", "string"),
        ("val_dataset_path", "string"),
        ("pretrained_model_path", "string"),
        ("optimizer", "OptimizerConfig"),
        ("batch_size_per_gpu", "uint32"),
        ("n_epochs", "uint32"),
        ("n_workers", "uint32"),
        ("reg_config", "RegConfig"),
        ("lr_config", "LRConfig"),
        ("random_seed", "uint32"),
        ("enable_random_crop", "bool"),
        ("enable_center_crop", "bool"),
        ("enable_color_augmentation", "bool"),
        ("disable_horizontal_flip", "bool"),
        ("label_smoothing", "float"),
        ("mixup_alpha", "float"),
        ("preprocess_mode", "string"),
        ("image_mean", "map<string,float>"),
        ("model_parallelism", "repeated float"),
        ("visualizer", "VisualizerConfig"),
    ),
    "OptimizerConfig": (
        ("sgd", "SgdOptimizerConfig", "optim"),
        ("adam", "AdamOptimizerConfig", "optim"),
        ("rmsprop", "RmspropOptimizerConfig", "optim"),
    ),
    "SgdOptimizerConfig": (
        ("lr", "float"),
        ("decay", "float"),
        ("momentum", "float"),
        ("nesterov", "bool"),
    ),
    "AdamOptimizerConfig": (
        ("lr", "float"),
        ("beta_1", "float"),
        ("beta_2", "float"),
        ("epsilon", "float"),
        ("decay", "float"),
    ),
    "RmspropOptimizerConfig": (
        ("lr", "float"),
        ("rho", "float"),
        ("epsilon", "float"),
        ("decay", "float"),
    ),
    "RegConfig": (("type", "string"), ("scope", "string"), ("weight_decay", "float")),
    "LRConfig": (
        ("step", "StepLrConfig", "lr_scheduler"),
        ("soft_anneal", "SoftAnnealLrConfig", "lr_scheduler"),
        ("cosine", "CosineLrConfig", "lr_scheduler"),
    ),
    "StepLrConfig": (("learning_rate", "float"), ("step_size", "uint32"), ("gamma", "float")),
    "SoftAnnealLrConfig": (
        ("learning_rate", "float"),
        ("soft_start", "float"),
        ("annealing_divider", "float"),
        ("annealing_points", "repeated float"),
    ),
    "CosineLrConfig": (
        ("learning_rate", "float"),
        ("min_lr_ratio", "float"),
        ("soft_start", "float"),
    ),
    "VisualizerConfig": (
        ("enabled", "bool"),
        ("num_images", "uint32"),
        ("weight_histograms", "bool"),
        ("wandb_config", "WandBConfig"),
        ("clearml_config", "ClearMLConfig"),
    ),
    "WandBConfig": (
        ("enabled", "bool"),
        ("key", "string"),
        ("project", "string"),
        ("entity", "string"),
        ("reinit", "bool"),
        ("name", "string"),
        ("tags", "repeated string"),
        ("wandb_dir", "string"),
        ("notes", "string"),
        ("mode", "WandBMode"),
    ),
    "ClearMLConfig": (
        ("project", "string"),
        ("task", "string"),
        ("tags", "repeated string"),
        ("reuse_last_task_id", "bool"),
        ("continue_last_task", "bool"),
        ("deferred_init", "bool"),
    ),
    "EvalConfig": (
        ("eval_dataset_path", "string"),
        ("model_path", "string"),
        ("top_k", "uint32"),
        ("batch_size", "uint32"),
        ("n_workers", "uint32"),
        ("enable_center_crop", "bool"),
    ),
}

_Field = descriptor_pb2.FieldDescriptorProto
_SCALAR_TYPES = {
    "string": _Field.TYPE_STRING,
    "bool": _Field.TYPE_BOOL,
    "float": _Field.TYPE_FLOAT,
    "uint32": _Field.TYPE_UINT32,
}


def _set_type(field: descriptor_pb2.FieldDescriptorProto, type_name: str) -> None:
    """Sets a field's type from a scalar, enum or message name of the table."""
    if type_name in _SCALAR_TYPES:
        field.type = _SCALAR_TYPES[type_name]
    elif type_name in _ENUMS:
        field.type = _Field.TYPE_ENUM
        field.type_name = f".{_PACKAGE}.{type_name}"
    elif type_name in _MESSAGES:
        field.type = _Field.TYPE_MESSAGE
        field.type_name = f".{_PACKAGE}.{type_name}"
    else:
        raise AssertionError(f"spec table: unknown type {type_name!r}")


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    """Builds the .proto file of the experiment spec from the field table."""
    file = descriptor_pb2.FileDescriptorProto(
        name="tao_kfp/spec/experiment.proto", package=_PACKAGE, syntax="proto3"
    )
    for enum_name, values in _ENUMS.items():
        enum = file.enum_type.add(name=enum_name)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        oneofs: List[str] = []
        for number, (name, type_spec, *oneof) in enumerate(fields, start=1):
            field = message.field.add(name=name, number=number, label=_Field.LABEL_OPTIONAL)
            if oneof:
                if oneof[0] not in oneofs:
                    oneofs.append(oneof[0])
                    message.oneof_decl.add(name=oneof[0])
                field.oneof_index = oneofs.index(oneof[0])
            if type_spec.startswith("map<"):
                # A proto map is a repeated nested "<Name>Entry" message marked map_entry.
                key_type, value_type = type_spec[len("map<") : -1].split(",")
                entry = message.nested_type.add(
                    name="".join(part.title() for part in name.split("_")) + "Entry"
                )
                entry.options.map_entry = True
                for entry_number, (entry_field, entry_type) in enumerate(
                    (("key", key_type), ("value", value_type)), start=1
                ):
                    entry.field.add(
                        name=entry_field,
                        number=entry_number,
                        label=_Field.LABEL_OPTIONAL,
                        type=_SCALAR_TYPES[entry_type],
                    )
                field.label = _Field.LABEL_REPEATED
                field.type = _Field.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{message_name}.{entry.name}"
            elif type_spec.startswith("repeated "):
                field.label = _Field.LABEL_REPEATED
                _set_type(field, type_spec.split()[1])
            else:
                _set_type(field, type_spec)
    return file


# A private pool: rebuilding (tests, reloads) never collides with the default pool.
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_build_file())

ExperimentSpec = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName(f"{_PACKAGE}.Experiment")
)


def _message_paths() -> Dict[str, str]:
    """Maps each message type's full name to its dotted path in a spec (each type is used once)."""
    paths: Dict[str, str] = {}

    def visit(descriptor: Any, path: str) -> None:
        paths.setdefault(descriptor.full_name, path)
        for field in descriptor.fields:
            if field.message_type is not None and not _is_map(field):
                visit(field.message_type, f"{path}.{field.name}" if path else field.name)

    visit(ExperimentSpec.DESCRIPTOR, "")
    return paths


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


_PATHS = _message_paths()


class SpecError(ValueError):
    """A spec file, text or override that cannot be used; the message says where and how to fix."""


# ---------------------------------------------------------------------------------------------
# Parse, print, load
# ---------------------------------------------------------------------------------------------

# Names from older TAO docs that the proto does not accept (none at the moment).
_RENAMED_FIELDS: Dict[str, str] = {}

# Fields the tao-deploy image's classification_tf1 proto lacks, so gen_trt_engine could not
# parse a spec carrying them: NVIDIA/tao_deploy 5.0 (a285787)
# cv/classification_tf1/proto/visualizer_config.proto:9-18 (enabled, num_images,
# weight_histograms only) and model_config.proto:26-42 (retain_head, no use_imagenet_head).
# Every other field of this module's table is in the deploy proto.
DEPLOY_ABSENT_FIELDS = (
    "model_config.use_imagenet_head",
    "train_config.visualizer.wandb_config",
    "train_config.visualizer.clearml_config",
)
_UNKNOWN_FIELD = re.compile(r'Message type "(?P<type>[\w.]+)" has no field named "(?P<field>\w+)"')


def _valid_fields(descriptor: Any) -> str:
    return ", ".join(field.name for field in descriptor.fields)


def _where(full_name: str) -> str:
    path = _PATHS.get(full_name, "")
    return path if path else "the top level (model_config, train_config, eval_config)"


def _describe_parse_error(error: text_format.ParseError, text: str, source: str) -> str:
    line, column = error.GetLine(), error.GetColumn()
    reason = re.sub(r"^\d+:\d+ : ", "", str(error))
    unknown = _UNKNOWN_FIELD.search(reason)
    if unknown:
        descriptor = _POOL.FindMessageTypeByName(unknown["type"])
        name = unknown["field"]
        reason = (
            f"unknown field {name!r} in {_where(descriptor.full_name)}; "
            f"valid fields: {_valid_fields(descriptor)}"
        )
        if name in _RENAMED_FIELDS:
            reason += f" (use {_RENAMED_FIELDS[name]!r} instead of {name!r})"
    lines = text.splitlines()
    if line and 0 < line <= len(lines):
        reason += f"\n    line {line}: {lines[line - 1].strip()}"
    position = f"{source}:{line}:{column}" if line else source
    return f"{position}: {reason}"


def parse_spec(text: str, source: str = "<spec text>") -> ExperimentSpec:
    """Parses protobuf text into an ``ExperimentSpec``.

    Args:
        text: the spec in protobuf text format.
        source: name used in error messages (a file path).

    Returns:
        The parsed spec.

    Raises:
        SpecError: on syntax errors, unknown fields, bad values or duplicated fields, naming
            the source, line and field.
    """
    spec = ExperimentSpec()
    try:
        text_format.Parse(text, spec)
    except text_format.ParseError as error:
        raise SpecError(_describe_parse_error(error, text, source)) from None
    return spec


def load_spec(path: Union[str, os.PathLike]) -> ExperimentSpec:
    """Reads and parses a spec file (see ``parse_spec``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(f"cannot read spec file {path}: {error.strerror or error}") from None
    return parse_spec(text, source=str(path))


def deploy_spec(spec: ExperimentSpec) -> ExperimentSpec:
    """A copy of ``spec`` without the fields tao-deploy's proto lacks (``DEPLOY_ABSENT_FIELDS``)."""
    copy = ExperimentSpec()
    copy.CopyFrom(spec)
    for path in DEPLOY_ABSENT_FIELDS:
        *parents, name = path.split(".")
        message = copy
        for parent in parents:
            message = getattr(message, parent)
        message.ClearField(name)
    return copy


def dump_spec(spec: ExperimentSpec) -> str:
    """Prints a spec as protobuf text (fields at their default value are omitted)."""
    return text_format.MessageToString(spec)


def default_spec() -> ExperimentSpec:
    """Returns the shipped notebook spec; its dataset and model paths are placeholders."""
    from tao_kfp.resources import shipped_file

    return load_spec(shipped_file(SPEC_RELATIVE_PATH))


# ---------------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------------


def apply_overrides(spec: ExperimentSpec, overrides: Mapping) -> ExperimentSpec:
    """Returns a copy of ``spec`` with ``overrides`` applied; ``spec`` itself is not changed.

    Keys are field names, nested dicts or dotted paths (``{"train_config.n_epochs": 10}`` equals
    ``{"train_config": {"n_epochs": 10}}``). A dict value merges into a message field; a list
    replaces a repeated field; a dict given to a map field (``image_mean``) replaces the whole
    map, while ``"train_config.image_mean.b": 103.9`` sets one entry. Setting a member of a
    oneof (``train_config.optimizer.adam.lr``) clears the other members. ``None`` resets a
    field to its default (removes a message such as ``eval_config``).

    Raises:
        SpecError: naming the key for unknown fields (with the valid field names) and for
            values of the wrong type.
    """
    result = ExperimentSpec()
    result.CopyFrom(spec)
    _apply_mapping(result, "", overrides)
    return result


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _apply_mapping(message: Any, prefix: str, mapping: Any) -> None:
    if not isinstance(mapping, Mapping):
        raise SpecError(
            f"override {prefix or '(top level)'} must be a mapping of field names to values, "
            f"got {type(mapping).__name__} {mapping!r}"
        )
    chosen: Dict[str, str] = {}  # oneof name -> member set by this mapping
    for key, value in mapping.items():
        full_key = _join(prefix, str(key))
        if not isinstance(key, str) or not key:
            raise SpecError(f"override key {full_key!r} must be a non-empty field name")
        name, _, rest = key.partition(".")
        field = message.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            raise SpecError(
                f"unknown override key {full_key!r}: {name!r} is not a field of "
                f"{_where(message.DESCRIPTOR.full_name)}; valid fields: "
                f"{_valid_fields(message.DESCRIPTOR)}"
            )
        oneof = field.containing_oneof
        if oneof is not None:
            if chosen.get(oneof.name, name) != name:
                raise SpecError(
                    f"overrides set both {_join(prefix, chosen[oneof.name])!r} and "
                    f"{_join(prefix, name)!r}; only one of "
                    f"{', '.join(f.name for f in oneof.fields)} can be used"
                )
            chosen[oneof.name] = name
        path = _join(prefix, name)
        if not rest:
            _assign(message, field, path, value)
        elif _is_map(field):
            getattr(message, name)[rest] = _check_scalar(
                field.message_type.fields_by_name["value"], f"{path}.{rest}", value
            )
        elif field.message_type is not None and not field.is_repeated:
            child = getattr(message, name)
            child.SetInParent()  # selects this oneof member even if the value sets nothing
            _apply_mapping(child, path, {rest: value})
        else:
            raise SpecError(
                f"unknown override key {full_key!r}: {path} is a single value, "
                f"it has no field {rest!r}"
            )


def _assign(message: Any, field: Any, path: str, value: Any) -> None:
    name = field.name
    if value is None:
        message.ClearField(name)
    elif _is_map(field):
        if not isinstance(value, Mapping):
            raise SpecError(
                f"{path} is a map: give a mapping such as {{b: 103.939}}, got {value!r}"
            )
        value_field = field.message_type.fields_by_name["value"]
        entries = {str(k): _check_scalar(value_field, f"{path}.{k}", v) for k, v in value.items()}
        target = getattr(message, name)
        target.clear()
        target.update(entries)
    elif field.message_type is not None:
        child = getattr(message, name)
        child.SetInParent()
        _apply_mapping(child, path, value)
    elif field.is_repeated:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
            raise SpecError(f"{path} is a repeated field: give a list, got {value!r}")
        items = [_check_scalar(field, f"{path}[{i}]", item) for i, item in enumerate(value)]
        target = getattr(message, name)
        del target[:]
        target.extend(items)
    else:
        setattr(message, name, _check_scalar(field, path, value))


def _check_scalar(field: Any, path: str, value: Any) -> Any:
    """Returns ``value`` converted for ``field`` or raises SpecError naming ``path``."""
    cpp = field.cpp_type
    got = f"got {type(value).__name__} {value!r}"
    if cpp == field.CPPTYPE_BOOL:
        if isinstance(value, bool):
            return value
        raise SpecError(f"{path} must be true or false, {got}")
    if cpp == field.CPPTYPE_UINT32:
        # Helm's toYaml prints integers >= 1e6 as floats ("1e+06"): accept whole floats.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32:
            return value
        raise SpecError(f"{path} must be a whole number >= 0, {got}")
    if cpp == field.CPPTYPE_FLOAT:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise SpecError(f"{path} must be a number, {got}")
    if cpp == field.CPPTYPE_STRING:
        if isinstance(value, str):
            return value
        raise SpecError(f"{path} must be a string (quote it in YAML), {got}")
    if cpp == field.CPPTYPE_ENUM:
        names = [v.name for v in field.enum_type.values]
        if isinstance(value, str) and value in names:
            return field.enum_type.values_by_name[value].number
        raise SpecError(f"{path} must be one of {', '.join(names)}, {got}")
    raise AssertionError(f"spec table: unsupported field type for {path}")


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

ARCHITECTURES = (
    "resnet",
    "vgg",
    "alexnet",
    "googlenet",
    "mobilenet_v1",
    "mobilenet_v2",
    "squeezenet",
    "darknet",
    "cspdarknet",
    "cspdarknet_tiny",
    *(f"efficientnet_b{i}" for i in range(8)),
)
# Depths the reference lists per architecture (0 means the default, 18).
N_LAYERS = {
    "resnet": (10, 18, 34, 50, 101, 152, 200),
    "vgg": (16, 19),
    "darknet": (19, 53),
    "cspdarknet": (19, 53),
}

# Value rules keyed by field *name*, as in TAO 5.0 (makenet/spec_handling/constants.py): they
# apply wherever the name occurs inside a message that is present, even when the field is unset
# (proto3 has no presence, so unset reads as 0 or ""). Rules marked "+" are checks TAO only fails
# on later (or not at all) that are cheap to catch before a GPU is allocated.
_Rule = Tuple[str, Any]
_VALUE_RULES: Dict[str, Tuple[_Rule, ...]] = {
    "arch": (("in", ARCHITECTURES),),
    "input_image_size": (("set", None),),
    "activation_type": (("set", None),),
    "n_workers": ((">", 0),),
    "label_smoothing": ((">=", 0),),
    "mixup_alpha": ((">=", 0),),
    "train_dataset_path": (("set", None),),
    "val_dataset_path": (("set", None),),
    "n_epochs": ((">", 0),),
    "batch_size_per_gpu": ((">", 0),),
    "preprocess_mode": (("in", ("tf", "caffe", "torch")),),
    "eval_dataset_path": (("set", None),),
    "top_k": ((">", 0),),  # +
    "batch_size": ((">", 0),),  # +
    "learning_rate": ((">", 0),),
    "momentum": ((">=", 0),),
    "epsilon": ((">=", 0),),
    "rho": ((">=", 0),),
    "beta_1": ((">=", 0),),
    "beta_2": ((">=", 0),),
    "decay": ((">=", 0),),
    "dropout": ((">=", 0),),
    "step_size": ((">=", 0), ("<=", 100)),  # + <= 100: a percentage of total iterations
    "gamma": ((">=", 0), ("<=", 1)),  # + <= 1
    "soft_start": ((">=", 0),),
    "annealing_divider": ((">=", 0),),
    "annealing_points": ((">=", 0),),
    "min_lr_ratio": ((">=", 0),),
    "lr": ((">", 0),),
    "type": (("in", ("L1", "L2", "None")),),
    "scope": (("set", None),),
    "weight_decay": ((">", 0), ("<", 1)),  # + < 1
}
_COMPARE = {
    ">": lambda value, limit: value > limit,
    ">=": lambda value, limit: value >= limit,
    "<": lambda value, limit: value < limit,
    "<=": lambda value, limit: value <= limit,
    "in": lambda value, limit: value in limit,
    "set": lambda value, limit: value != "",
}

# Top-level sections each task reads (TAO: train_val vs validation schema). prune reads no spec.
_REQUIRED_SECTIONS = {
    "train": ("model_config", "train_config"),
    "evaluate": ("model_config", "train_config", "eval_config"),
    "inference": ("model_config", "train_config", "eval_config"),
    "export": ("model_config", "train_config"),
    "prune": (),
}
_REQUIRED_IN_TRAIN_CONFIG = ("optimizer", "reg_config", "lr_config")
_ONEOF_EXAMPLES = {
    "optimizer": "sgd { lr: 0.01 momentum: 0.9 }",
    "lr_config": "step { learning_rate: 0.006 step_size: 10 gamma: 0.1 }",
}


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.7g}"  # float32 fields: 0.01 reads back as 0.00999999977
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _rule_message(path: str, op: str, limit: Any, value: Any) -> str:
    if op == "set":
        return f"{path} must be set (got '')"
    if op == "in":
        message = f"{path} must be one of {', '.join(limit)} (got {_show(value)})"
        depth = re.fullmatch(r"([a-z_]+?)_?(\d+)", value) if isinstance(value, str) else None
        if depth and depth[1] in N_LAYERS:
            message += f'; write arch: "{depth[1]}" and n_layers: {depth[2]}'
        return message
    return f"{path} must be {op} {limit} (got {_show(value)})"


def _value_problems(message: Any, prefix: str) -> Iterator[str]:
    """Applies ``_VALUE_RULES`` to every field of ``message`` and of its present sub-messages."""
    for field in message.DESCRIPTOR.fields:
        path = _join(prefix, field.name)
        if field.message_type is not None:
            # Maps are skipped like TAO does; there are no repeated messages in this schema.
            if not field.is_repeated and message.HasField(field.name):
                yield from _value_problems(getattr(message, field.name), path)
            continue
        rules = _VALUE_RULES.get(field.name)
        if not rules:
            continue
        value = getattr(message, field.name)
        if field.is_repeated:
            items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        else:
            items = [(path, value)]
        for item_path, item in items:
            broken = [(op, limit) for op, limit in rules if not _COMPARE[op](item, limit)]
            if broken:
                yield _rule_message(item_path, *broken[0], item)


def _image_size_problems(size: str) -> List[str]:
    if not size:
        return []  # already reported as unset
    parts = [part.strip() for part in size.split(",")]
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return [f'model_config.input_image_size must be "C,H,W" such as "3,224,224" (got {size!r})']
    channels, height, width = (int(part) for part in parts)
    problems = []
    if channels not in (1, 3):
        problems.append(f"model_config.input_image_size channels must be 1 or 3 (got {channels})")
    if height < 16 or width < 16:
        problems.append(
            f"model_config.input_image_size height and width must be >= 16 (got {height},{width})"
        )
    return problems


def _model_problems(model: Any) -> List[str]:
    problems = _image_size_problems(model.input_image_size)
    depths = N_LAYERS.get(model.arch)
    if depths and model.n_layers and model.n_layers not in depths:
        problems.append(
            f"model_config.n_layers must be one of {', '.join(map(str, depths))} for arch "
            f"{model.arch!r} (got {model.n_layers})"
        )
    return problems


def _train_problems(train: Any, channels: Optional[int]) -> List[str]:
    problems = []
    for name in _REQUIRED_IN_TRAIN_CONFIG:
        if not train.HasField(name):
            problems.append(f"train_config.{name} is missing: add a {name} {{ ... }} block")
    for name in ("optimizer", "lr_config"):
        section = getattr(train, name)
        oneof = section.DESCRIPTOR.oneofs[0]
        if train.HasField(name) and section.WhichOneof(oneof.name) is None:
            members = ", ".join(field.name for field in oneof.fields)
            problems.append(
                f"train_config.{name} must contain one of {members}, "
                f"e.g. {name} {{ {_ONEOF_EXAMPLES[name]} }}"
            )
    if train.image_mean and channels in (1, 3):
        # TAO asserts these keys exist; a missing one would silently read as a mean of 0.
        required = {"r", "g", "b"} if channels == 3 else {"l"}
        missing = sorted(required - set(train.image_mean))
        if missing:
            problems.append(
                f"train_config.image_mean needs a value for {', '.join(missing)} with "
                f"{channels}-channel images (has {', '.join(sorted(train.image_mean))}); "
                "add image_mean { key: '<channel>' value: <mean> } blocks"
            )
    return problems


def validate_spec(spec: ExperimentSpec, task: str) -> List[str]:
    """Checks a spec for one TAO task with the TAO 5.0 rules (plus a few run-time checks).

    Args:
        spec: the spec to check.
        task: one of ``train``, ``evaluate``, ``inference``, ``prune``, ``export``.

    Returns:
        Human-readable problems naming the dotted field, the bad value and the accepted values,
        e.g. ``"train_config.n_epochs must be > 0 (got 0)"``; empty when the spec is usable.
    """
    if task not in _REQUIRED_SECTIONS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    problems = [
        f"{section} is missing: the {task} task needs a {section} {{ ... }} block"
        for section in _REQUIRED_SECTIONS[task]
        if not spec.HasField(section)
    ]
    problems.extend(_value_problems(spec, ""))
    channels = None
    if spec.HasField("model_config"):
        problems.extend(_model_problems(spec.model_config))
        first = spec.model_config.input_image_size.split(",")[0].strip()
        channels = int(first) if first.isdigit() else None
    if spec.HasField("train_config"):
        problems.extend(_train_problems(spec.train_config, channels))
    if task == "evaluate" and spec.HasField("eval_config") and not spec.eval_config.model_path:
        problems.append(
            "eval_config.model_path must be set for evaluate: it is the only way to choose "
            "the model TAO evaluates (got '')"
        )
    return problems


# ---------------------------------------------------------------------------------------------
# Idempotent rendering (the chart's post-install Job)
# ---------------------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_file(out: Path) -> Path:
    return out.with_name(out.name + ".sha256")


def _atomic_write(path: Path, data: bytes) -> None:
    """Writes through a temporary file and ``os.replace`` so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; match a normal open()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _recorded_hash(out: Path) -> Optional[str]:
    try:
        first = _hash_file(out).read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return None
    return first[0] if first and re.fullmatch(r"[0-9a-f]{64}", first[0]) else None


def write_rendered(out: Union[str, os.PathLike], text: str, *, force: bool = False) -> str:
    """Writes ``text`` to ``out`` plus ``out.sha256``, unless the user edited ``out``.

    ``out`` counts as ours when its hash matches the recorded one (or it already holds
    ``text``); it is then rewritten, because the chart values may have changed. A file with a
    different hash, or without a ``.sha256`` record, was edited by hand and is kept unless
    ``force`` is set.

    Returns:
        ``"written"``, ``"kept"`` (user edit preserved) or ``"forced"`` (user edit replaced).
    """
    out = Path(out)
    data = text.encode("utf-8")
    outcome = "written"
    if out.exists():
        current = _sha256(out.read_bytes())
        ours = current in (_recorded_hash(out), _sha256(data))
        if not ours:
            if not force:
                return "kept"
            outcome = "forced"
    _atomic_write(out, data)
    # sha256sum format, so `sha256sum -c classification_spec.cfg.sha256` works next to it.
    _atomic_write(_hash_file(out), f"{_sha256(data)}  {out.name}\n".encode())
    return outcome


def parse_overrides(text: str, source: str) -> Dict[str, Any]:
    """Parses spec overrides: a YAML (or JSON) mapping; empty means none.

    The one parser for the ``spec_overrides`` run parameter (step 1) and ``tao-kfp spec
    --overrides``. Raises ``SpecError`` naming ``source``.
    """
    import yaml

    if not text.strip():
        return {}
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecError(f"{source} is not valid YAML/JSON: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, Mapping):
        raise SpecError(
            f"{source} must be a YAML/JSON mapping such as "
            f'{{"train_config": {{"n_epochs": 10}}}}, got {type(loaded).__name__}'
        )
    return dict(loaded)


def _load_overrides(path: Path) -> Dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(f"cannot read overrides file {path}: {error.strerror or error}") from None
    return parse_overrides(text, f"overrides file {path}")


def _print_problems(problems: List[str], source: str, task: str) -> None:
    print(f"error: {source} is not valid for the {task} task:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)


def _run_render(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.base) if args.base else default_spec()
        if args.overrides:
            try:
                spec = apply_overrides(spec, _load_overrides(args.overrides))
            except SpecError as error:
                raise SpecError(f"{args.overrides}: {error}") from None
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    problems = validate_spec(spec, args.task)
    if problems:
        _print_problems(problems, "the rendered spec", args.task)
        return 1
    header = (
        f"# Rendered by `tao-kfp spec render` ({args.task} rules checked). Hand edits are kept\n"
        f"# on re-render (see {args.out.name}.sha256); pass --force to replace them.\n"
    )
    outcome = write_rendered(args.out, header + dump_spec(spec), force=args.force)
    if outcome == "kept":
        print(
            f"{args.out} was edited by hand (it no longer matches {_hash_file(args.out).name}); "
            f"keeping it. Re-run with --force to replace it with the rendered spec."
        )
        _warn_if_invalid(args.out, args.task)
    elif outcome == "forced":
        print(f"replaced hand-edited {args.out} with the rendered spec (--force)")
    else:
        print(f"wrote {args.out}")
    return 0


def _warn_if_invalid(path: Path, task: str) -> None:
    """Reports problems of a kept, hand-edited spec without failing the install."""
    try:
        problems = validate_spec(load_spec(path), task)
    except SpecError as error:
        problems = [str(error)]
    for problem in problems:
        print(f"warning: {path}: {problem}", file=sys.stderr)


def _run_validate(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.file)
    except SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    problems = validate_spec(spec, args.task)
    if problems:
        _print_problems(problems, str(args.file), args.task)
        return 1
    print(f"{args.file}: valid for the {args.task} task")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Registers ``tao-kfp spec render`` and ``tao-kfp spec validate``."""
    actions = parser.add_subparsers(dest="spec_action", required=True, metavar="ACTION")
    render = actions.add_parser(
        "render",
        help="write base spec + YAML overrides to a file, keeping hand edits",
        description=(
            "Render a spec (base + overrides), validate it and write OUT and OUT.sha256. "
            "Re-runs rewrite OUT only while it still matches OUT.sha256; a hand-edited OUT is "
            "kept unless --force is given."
        ),
    )
    render.add_argument(
        "--base", type=Path, metavar="FILE", help="base spec (default: the shipped notebook spec)"
    )
    render.add_argument(
        "--overrides", type=Path, metavar="FILE", help="YAML overrides (nested or dotted keys)"
    )
    render.add_argument(
        "--out", type=Path, metavar="FILE", required=True, help="spec file to write"
    )
    render.add_argument(
        "--task",
        choices=TASKS,
        default="evaluate",
        help="task whose rules the result must pass (default: evaluate, which needs every section)",
    )
    render.add_argument("--force", action="store_true", help="replace OUT even if hand-edited")
    render.set_defaults(_spec_run=_run_render)

    validate = actions.add_parser(
        "validate",
        help="check a spec file for one task",
        description="Check a spec file against the TAO 5.0 rules for one task.",
    )
    validate.add_argument("file", type=Path, help="spec file (protobuf text)")
    validate.add_argument("--task", choices=TASKS, default="train", help="default: train")
    validate.set_defaults(_spec_run=_run_validate)


def run(args: argparse.Namespace) -> int:
    """Runs ``tao-kfp spec render|validate``; returns 0 on success, 1 on invalid input."""
    return args._spec_run(args)
