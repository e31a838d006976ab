"""Parsers for what TAO classification prints and writes: train, evaluate, prune, inference, export.

Layouts follow real TAO 3.x output and the TAO 5.0 source. Every pattern searches
inside a line rather than anchoring at its start, so both log prefixes work:
``2022-03-08 07:36:56,729 [INFO] __main__: `` (3.x) and
``... [TAO Toolkit] [INFO] __main__ 123: `` (5.0).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

# A number as Python/Keras print it, including nan and inf.
_FLOAT = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"
_TAIL_LINES = 8


class ParseError(ValueError):
    """Output that lacks a line the parser needs; the message quotes it and the output's tail."""


def _tail(text: str) -> str:
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip()][-_TAIL_LINES:]
    if not lines:
        return "(the output was empty)"
    return "last lines of the output:\n" + "\n".join(f"  | {line}" for line in lines)


def _missing(command: str, expected: str, text: str) -> ParseError:
    return ParseError(
        f"TAO {command} output: expected a line like {expected!r} but found none; {_tail(text)}"
    )


def _last_float(pattern: str, text: str) -> Optional[float]:
    """Returns the number captured by the last match of ``pattern`` (a one-group regex)."""
    matches = re.findall(pattern, text, flags=re.MULTILINE | re.IGNORECASE)
    return float(matches[-1]) if matches else None


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSummary:
    """End-of-training figures (``val_*`` are None when training printed none)."""

    val_loss: Optional[float]
    val_accuracy: Optional[float]
    epochs_completed: int
    total_epochs: Optional[int]


_EPOCH = re.compile(r"(?:^|\s)Epoch (\d+)/(\d+)\s*$")
_VAL_LOSS = re.compile(rf"\bval_loss: ({_FLOAT})")
_VAL_ACC = re.compile(rf"\bval_(?:acc|accuracy): ({_FLOAT})")


def parse_train_output(text: str) -> TrainSummary:
    """Parses ``train`` stdout.

    The final ``Total Val Loss`` / ``Total Val accuracy`` log lines win; without them (a run
    that stopped early) the last epoch's ``val_loss``/``val_acc`` are used. An epoch counts as
    completed once its progress line shows validation metrics; numbers are absolute, so a
    resumed run (``--init_epoch``) reports its real last epoch.

    Raises:
        ParseError: when the output has neither epoch lines nor the final summary.
    """
    completed, total = 0, None
    current: Optional[int] = None
    epoch_loss = epoch_acc = None
    # Keras redraws its progress bar with \r, so split on both line ends.
    for line in re.split(r"[\r\n]+", text):
        epoch = _EPOCH.search(line)
        if epoch:
            current, total = int(epoch[1]), int(epoch[2])
            continue
        loss, acc = _VAL_LOSS.search(line), _VAL_ACC.search(line)
        if loss and current is not None:
            completed = max(completed, current)
            epoch_loss = float(loss[1])
            epoch_acc = float(acc[1]) if acc else epoch_acc
    val_loss = _last_float(rf"Total Val Loss:\s*({_FLOAT})\s*$", text)
    val_accuracy = _last_float(rf"Total Val accuracy:\s*({_FLOAT})\s*$", text)
    if val_loss is None and current is None:
        raise _missing("train", "Epoch 1/80 ... or Total Val Loss: <float>", text)
    return TrainSummary(
        val_loss=val_loss if val_loss is not None else epoch_loss,
        val_accuracy=val_accuracy if val_accuracy is not None else epoch_acc,
        epochs_completed=completed,
        total_epochs=total,
    )


# Newer Keras spells the metric out; normalise to the keras 2.2.4 names TAO 3.x writes.
_CSV_ALIASES = {"accuracy": "acc", "val_accuracy": "val_acc", "learning_rate": "lr"}


def read_training_csv(path: Union[str, os.PathLike]) -> List[Dict[str, Union[int, float, None]]]:
    """Reads the Keras CSVLogger ``training.csv`` written by train.

    Returns:
        One dict per row with ``epoch`` as int and ``acc``, ``loss``, ``lr``, ``val_acc``,
        ``val_loss`` (and any other column) as floats; empty cells are None.

    Raises:
        ParseError: when the file has no header with an ``epoch`` column or a cell is not a number.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if not rows or "epoch" not in [cell.strip() for cell in rows[0]]:
        header = ",".join(rows[0]) if rows else "(empty file)"
        raise ParseError(
            f"{path}: expected a CSVLogger header such as 'epoch,acc,loss,lr,val_acc,val_loss', "
            f"got {header!r}"
        )
    columns = [_CSV_ALIASES.get(cell.strip(), cell.strip()) for cell in rows[0]]
    records = []
    for line_number, row in enumerate(rows[1:], start=2):
        record: Dict[str, Union[int, float, None]] = {}
        for column, cell in zip(columns, row):
            cell = cell.strip()
            try:
                value = float(cell) if cell else None
            except ValueError:
                raise ParseError(
                    f"{path}:{line_number}: column {column!r} is not a number: {cell!r}"
                ) from None
            record[column] = int(value) if column == "epoch" and value is not None else value
        records.append(record)
    return records


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassReport:
    """One row of sklearn's classification report (values are printed with 2 decimals)."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationResult:
    """What ``evaluate`` prints.

    ``top_k_accuracy`` uses k = ``eval_config.top_k``. ``top1_accuracy`` is exact
    (trace / sum of the confusion matrix); only when numpy elided the matrix (more than 1000
    cells, i.e. over 31 classes) is ``confusion_matrix`` empty and ``top1_accuracy`` the
    report's 2-decimal ``accuracy`` row.
    """

    loss: float
    top_k_accuracy: float
    confusion_matrix: List[List[int]]
    class_names: List[str]
    per_class: Dict[str, ClassReport]
    top1_accuracy: float
    macro_avg: Optional[ClassReport]
    weighted_avg: Optional[ClassReport]


_REPORT_ROW = re.compile(
    rf"^\s*(?P<name>\S.*?)\s+(?P<precision>{_FLOAT})\s+(?P<recall>{_FLOAT})"
    rf"\s+(?P<f1>{_FLOAT})\s+(?P<support>\d+)\s*$"
)
_ACCURACY_ROW = re.compile(rf"^\s*accuracy\s+(?P<accuracy>{_FLOAT})\s+(?P<support>\d+)\s*$")
# "avg / total" is the single summary row of scikit-learn < 0.22.
_SUMMARY_ROWS = ("macro avg", "weighted avg", "micro avg", "avg / total")


def _confusion_matrix(text: str) -> Optional[List[List[int]]]:
    """Parses the numpy print after ``Confusion Matrix``; None when numpy elided it with '...'.

    numpy wraps rows wider than 75 characters onto extra lines, so rows are read as
    bracket-delimited groups, not lines.
    """
    marker = re.search(r"Confusion Matrix\s*$", text, flags=re.MULTILINE)
    if not marker:
        raise _missing("evaluate", "Confusion Matrix", text)
    start = text.find("[", marker.end())
    end = _closing_bracket(text, start) if start >= 0 else -1
    if end < 0:
        raise ParseError(
            "TAO evaluate output: expected a numpy matrix like '[[ 70  12]\\n [  3 233]]' after "
            f"'Confusion Matrix' but the brackets never close; {_tail(text)}"
        )
    block = text[start : end + 1]
    if "..." in block:
        return None
    rows = []
    for row_text in re.findall(r"\[([^\[\]]*)\]", block):
        try:
            rows.append([int(float(cell)) for cell in row_text.split()])
        except ValueError:
            raise ParseError(
                f"TAO evaluate output: confusion matrix row [{row_text.strip()}] is not numeric"
            ) from None
    if not rows or any(len(row) != len(rows) for row in rows):
        raise ParseError(
            f"TAO evaluate output: the confusion matrix is not square "
            f"(row lengths {[len(row) for row in rows]}): {block}"
        )
    return rows


def _closing_bracket(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``start``, or -1 when the text ends first."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"[": 1, "]": -1}.get(text[index], 0)
        if depth == 0:
            return index
    return -1


def _classification_report(
    text: str,
) -> Tuple[Dict[str, ClassReport], Optional[float], Optional[ClassReport], Optional[ClassReport]]:
    """Returns (per_class, accuracy, macro_avg, weighted_avg) from sklearn's report."""
    marker = re.search(r"^.*\bprecision\s+recall\s+f1-score\s+support\s*$", text, re.MULTILINE)
    if not marker:
        raise _missing("evaluate", "precision    recall  f1-score   support", text)
    per_class: Dict[str, ClassReport] = {}
    summary: Dict[str, ClassReport] = {}
    accuracy = None
    for line in text[marker.end() :].splitlines():
        if summary.get("weighted avg") or summary.get("avg / total"):
            break
        found = _ACCURACY_ROW.match(line)
        if found and per_class:
            accuracy = float(found["accuracy"])
            continue
        row = _REPORT_ROW.match(line)
        if not row:
            continue  # blank separators, or stray stderr (sklearn warnings) in merged output
        report = ClassReport(
            precision=float(row["precision"]),
            recall=float(row["recall"]),
            f1=float(row["f1"]),
            support=int(row["support"]),
        )
        if row["name"] in _SUMMARY_ROWS and per_class:
            summary[row["name"]] = report
        else:
            per_class[row["name"]] = report
    if not per_class:
        raise _missing("evaluate", "<class name>  0.96  0.85  0.90  82", text)
    if accuracy is None and "micro avg" in summary:
        accuracy = summary["micro avg"].f1  # reports limited to some labels print micro avg
    weighted = summary.get("weighted avg") or summary.get("avg / total")
    return per_class, accuracy, summary.get("macro avg"), weighted


def parse_evaluate_scores(text: str) -> Tuple[float, float]:
    """(loss, top-k accuracy) from ``evaluate`` stdout; these lines print at any class count.

    Raises:
        ParseError: when either line is missing.
    """
    loss = _last_float(rf"Evaluation Loss:\s*({_FLOAT})\s*$", text)
    if loss is None:
        raise _missing("evaluate", "Evaluation Loss: <float>", text)
    top_k = _last_float(rf"Evaluation Top K accuracy:\s*({_FLOAT})\s*$", text)
    if top_k is None:
        raise _missing("evaluate", "Evaluation Top K accuracy: <float>", text)
    return loss, top_k


def parse_evaluate_output(text: str) -> EvaluationResult:
    """Parses ``evaluate`` stdout: loss, top-k accuracy, confusion matrix and the report.

    Raises:
        ParseError: when a required line is missing or the matrix and report disagree.
    """
    loss, top_k = parse_evaluate_scores(text)
    matrix = _confusion_matrix(text)
    per_class, accuracy, macro, weighted = _classification_report(text)
    if matrix is not None and len(matrix) != len(per_class):
        raise ParseError(
            f"TAO evaluate output: the confusion matrix is {len(matrix)}x{len(matrix)} but the "
            f"classification report lists {len(per_class)} classes ({', '.join(per_class)})"
        )
    if matrix is not None and sum(map(sum, matrix)) > 0:
        top1 = sum(matrix[i][i] for i in range(len(matrix))) / sum(map(sum, matrix))
    elif accuracy is not None:
        top1 = accuracy
    else:
        raise _missing("evaluate", "accuracy  0.95  318", text)
    return EvaluationResult(
        loss=loss,
        top_k_accuracy=top_k,
        confusion_matrix=matrix or [],
        class_names=list(per_class),
        per_class=per_class,
        top1_accuracy=top1,
        macro_avg=macro,
        weighted_avg=weighted,
    )


# ---------------------------------------------------------------------------------------------
# prune, inference, export
# ---------------------------------------------------------------------------------------------


def parse_prune_output(text: str) -> float:
    """Returns the pruned / original parameter ratio from the ``Pruning ratio`` log line.

    Raises:
        ParseError: when the line is missing.
    """
    ratio = _last_float(rf"Pruning ratio \(pruned model / original model\):\s*({_FLOAT})\s*$", text)
    if ratio is None:
        raise _missing("prune", "Pruning ratio (pruned model / original model): <float>", text)
    return ratio


@dataclass(frozen=True)
class Prediction:
    """One row of inference's ``result.csv``."""

    image: str
    label: str
    confidence: float


def read_inference_csv(path: Union[str, os.PathLike]) -> List[Prediction]:
    """Reads ``result.csv`` of ``inference -d``: rows ``<image path>,<class name>,<probability>``.

    The file has no header (one is skipped if present). An image path containing unquoted
    commas is rejoined: the last two fields are always the label and the probability.

    Raises:
        ParseError: naming the file and line of a malformed row.
    """
    path = Path(path)
    predictions = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line_number, row in enumerate(csv.reader(handle), start=1):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < 3:
                raise ParseError(
                    f"{path}:{line_number}: expected '<image path>,<class name>,<probability>', "
                    f"got {','.join(row)!r}"
                )
            image, label, confidence = ",".join(row[:-2]), row[-2], row[-1].strip()
            try:
                value = float(confidence)
            except ValueError:
                if line_number == 1 and not predictions:
                    continue  # a header row
                raise ParseError(
                    f"{path}:{line_number}: probability {confidence!r} is not a number"
                ) from None
            predictions.append(Prediction(image=image, label=label.strip(), confidence=value))
    return predictions


def parse_export_output(text: str) -> Optional[str]:
    """Returns the path of the last ``Saving exported model to <path>`` line, or None."""
    matches = re.findall(r"Saving exported model to (.+?)\s*$", text, flags=re.MULTILINE)
    return matches[-1] if matches else None


# ---------------------------------------------------------------------------------------------
# scores from per-image predictions (exact at any class count)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassScores:
    """Exact per-class figures computed from a confusion matrix."""

    precision: float
    recall: float
    f1: float
    support: int


def confusion_from_labels(
    truths: List[str], predictions: List[str], class_names: List[str]
) -> List[List[int]]:
    """Confusion matrix (rows true, columns predicted, in ``class_names`` order).

    Raises:
        ParseError: a label that is not one of ``class_names``.
    """
    index = {name: i for i, name in enumerate(class_names)}
    matrix = [[0] * len(class_names) for _ in class_names]
    for truth, predicted in zip(truths, predictions, strict=True):
        for label in (truth, predicted):
            if label not in index:
                raise ParseError(
                    f"class {label!r} is not in the class map ({len(class_names)} classes: "
                    f"{', '.join(class_names[:10])}{', ...' if len(class_names) > 10 else ''})"
                )
        matrix[index[truth]][index[predicted]] += 1
    return matrix


def class_scores(matrix: List[List[int]], class_names: List[str]) -> Dict[str, ClassScores]:
    """Exact precision, recall and F1 per class (0 where undefined: sklearn's zero_division=0)."""
    scores = {}
    for i, name in enumerate(class_names):
        true_positives = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = true_positives / predicted if predicted else 0.0
        recall = true_positives / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[name] = ClassScores(precision, recall, f1, support)
    return scores


def top1_accuracy(matrix: List[List[int]]) -> Optional[float]:
    """Trace / sum of a confusion matrix (None when it is empty)."""
    total = sum(map(sum, matrix))
    return sum(matrix[i][i] for i in range(len(matrix))) / total if total else None
