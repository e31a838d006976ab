"""Parsers against real TAO 3.x output (verbatim samples) and numpy/sklearn-generated output."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from tao_kfp.parsers import (
    ClassReport,
    ParseError,
    Prediction,
    parse_evaluate_output,
    parse_export_output,
    parse_prune_output,
    parse_train_output,
    read_inference_csv,
    read_training_csv,
)

DATA = Path(__file__).parent / "data"
PREFIX_3X = "2022-03-08 07:36:56,729 [INFO] __main__: "
PREFIX_50 = "2023-06-01 10:00:00,000 [TAO Toolkit] [INFO] __main__ 312: "


def sample(name: str) -> str:
    return (DATA / name).read_text()


def as_tao_50(text: str) -> str:
    """Rewrites 3.x log prefixes into the 5.0 form."""
    return text.replace("[INFO] __main__: ", "[TAO Toolkit] [INFO] __main__ 312: ").replace(
        "[INFO] iva.common.magnet_prune: ",
        "[TAO Toolkit] [INFO] nvidia_tao_tf1.cv.common.magnet_prune 233: ",
    )


# --- train ------------------------------------------------------------------------------------


@pytest.mark.parametrize("convert", [str, as_tao_50], ids=["3.x prefix", "5.0 prefix"])
def test_train_summary_from_real_3x_output(convert):
    summary = parse_train_output(convert(sample("tao3_train_tail.txt")))
    assert summary.val_loss == pytest.approx(0.26003143191337585)
    assert summary.val_accuracy == pytest.approx(0.9859340786933899)
    assert summary.epochs_completed == 80
    assert summary.total_epochs == 80


def test_retrain_summary_ignores_the_launcher_line_after_it():
    summary = parse_train_output(sample("tao3_retrain_tail.txt"))
    assert (summary.val_loss, summary.val_accuracy) == pytest.approx(
        (0.17897455394268036, 0.9824175834655762)
    )
    assert summary.epochs_completed == 80


def test_train_without_final_summary_falls_back_to_the_last_completed_epoch():
    # A run that died in epoch 3: its progress line never reached validation.
    text = (
        "Epoch 1/10\n\r 1/71 [..] - ETA: 9s - loss: 0.9\r71/71 [====] - 9s - loss: 0.5 - acc: 0.7"
        " - val_loss: 0.4 - val_acc: 0.8\n"
        "Epoch 2/10\n71/71 [====] - 9s - loss: 0.4 - accuracy: 0.8 - val_loss: 0.3"
        " - val_accuracy: 0.85\n"
        "Epoch 3/10\n 5/71 [>...] - ETA: 8s - loss: 0.3 - accuracy: 0.9\n"
        "Killed\n"
    )
    summary = parse_train_output(text)
    assert summary.val_loss == pytest.approx(0.3)
    assert summary.val_accuracy == pytest.approx(0.85)
    assert summary.epochs_completed == 2
    assert summary.total_epochs == 10


def test_resumed_training_reports_absolute_epoch_numbers():
    text = (
        "Epoch 41/80\n71/71 - loss: 0.3 - acc: 0.9 - val_loss: 0.2 - val_acc: 0.95\n"
        f"{PREFIX_50}Total Val Loss: 0.2\n{PREFIX_50}Total Val accuracy: 0.95\n"
    )
    summary = parse_train_output(text)
    assert (summary.epochs_completed, summary.total_epochs) == (41, 80)


def test_train_output_without_epochs_or_summary_is_a_parse_error():
    with pytest.raises(ParseError) as error:
        parse_train_output("Found 10 images belonging to 2 classes.\nSegmentation fault\n")
    message = str(error.value)
    assert "Total Val Loss: <float>" in message
    assert "| Segmentation fault" in message


def test_training_csv_with_keras_224_header(tmp_path):
    path = tmp_path / "training.csv"
    path.write_text(
        "epoch,acc,loss,lr,val_acc,val_loss\n1,0.5,0.9,0.006,0.55,0.8\n2,0.75,0.6,0.006,0.8,0.5\n"
    )
    rows = read_training_csv(path)
    assert rows == [
        {"epoch": 1, "acc": 0.5, "loss": 0.9, "lr": 0.006, "val_acc": 0.55, "val_loss": 0.8},
        {"epoch": 2, "acc": 0.75, "loss": 0.6, "lr": 0.006, "val_acc": 0.8, "val_loss": 0.5},
    ]
    assert isinstance(rows[0]["epoch"], int)


def test_training_csv_normalises_newer_keras_names_and_empty_cells(tmp_path):
    path = tmp_path / "training.csv"
    path.write_text(
        "epoch,accuracy,loss,learning_rate,val_accuracy,val_loss\n0,0.5,0.9,,0.6,0.7\n\n"
    )
    assert read_training_csv(path) == [
        {"epoch": 0, "acc": 0.5, "loss": 0.9, "lr": None, "val_acc": 0.6, "val_loss": 0.7}
    ]


@pytest.mark.parametrize(
    "content, expected",
    [("", "(empty file)"), ("acc,loss\n0.5,0.9\n", "acc,loss"), ("epoch,acc\n1,high\n", "'high'")],
    ids=["empty", "no epoch column", "text cell"],
)
def test_training_csv_errors_name_the_file(tmp_path, content, expected):
    path = tmp_path / "training.csv"
    path.write_text(content)
    with pytest.raises(ParseError, match=str(path)) as error:
        read_training_csv(path)
    assert expected in str(error.value)


# --- evaluate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("convert", [str, as_tao_50], ids=["3.x prefix", "5.0 prefix"])
def test_evaluate_real_3x_output(convert):
    result = parse_evaluate_output(convert(sample("tao3_evaluate.txt")))
    assert result.loss == pytest.approx(0.3027826488580344)
    assert result.top_k_accuracy == 1.0
    assert result.confusion_matrix == [[70, 12], [3, 233]]
    assert result.class_names == ["bicycle", "electric_bicycle"]
    assert result.per_class["bicycle"] == ClassReport(0.96, 0.85, 0.90, 82)
    assert result.per_class["electric_bicycle"] == ClassReport(0.95, 0.99, 0.97, 236)
    assert result.top1_accuracy == (70 + 233) / 318  # exact, not the report's 0.95
    assert result.macro_avg == ClassReport(0.95, 0.92, 0.94, 318)
    assert result.weighted_avg == ClassReport(0.95, 0.95, 0.95, 318)


def test_evaluate_50_layout_with_class_map_line_and_execution_status():
    text = (
        "Class name = ['bicycle', 'electric_bicycle']\n"
        + as_tao_50(sample("tao3_evaluate.txt"))
        + "\nTelemetry data couldn't be sent, but the command ran successfully.\n"
        "[WARNING]: <urlopen error [Errno -2] Name or service not known>\n"
        "Execution status: PASS\n"
    )
    result = parse_evaluate_output(text)
    assert result.confusion_matrix == [[70, 12], [3, 233]]
    assert result.class_names == ["bicycle", "electric_bicycle"]


def test_evaluate_non_square_matrix_is_a_parse_error():
    text = sample("tao3_evaluate.txt").replace(" [  3 233]]", " [  3]]")
    with pytest.raises(ParseError, match=r"not square \(row lengths \[2, 1\]\)"):
        parse_evaluate_output(text)


VOC_LIKE_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "dining table", "dog", "horse", "motor_bike", "person", "potted plant", "sheep", "sofa",
    "train", "tv_monitor",
]  # fmt: skip


def tao_evaluate_text(y_true, y_pred, names, *, prefix=PREFIX_3X, warning=""):
    """Builds evaluate stdout the way TAO prints it: print(cm) and print(report)."""
    matrix = confusion_matrix(y_true, y_pred)
    report = classification_report(y_true, y_pred, target_names=names, zero_division=0)
    return (
        "Total params: 11,557,140\n"
        f"Found {len(y_true)} images belonging to {len(names)} classes.\n"
        f"{prefix}Processing dataset (evaluation): /workspace/data/split/test\n"
        "Evaluation Loss: 0.7001\nEvaluation Top K accuracy: 0.97\n"
        f"Found {len(y_true)} images belonging to {len(names)} classes.\n"
        f"{prefix}Calculating per-class P/R and confusion matrix. It may take a while...\n"
        f"{warning}Confusion Matrix\n{matrix}\nClassification Report\n{report}\n"
    )


def voc_like_predictions(n_classes=20, n_images=3000, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n_images)
    y_true[:400] = 14  # one big class, so some counts reach 3 digits
    y_pred = np.where(rng.random(n_images) < 0.8, y_true, rng.integers(0, n_classes, n_images))
    return y_true, y_pred


def test_evaluate_20_classes_with_wrapped_numpy_rows_round_trips_sklearn():
    y_true, y_pred = voc_like_predictions()
    text = tao_evaluate_text(y_true, y_pred, VOC_LIKE_CLASSES)
    matrix_text = str(confusion_matrix(y_true, y_pred))
    assert max(confusion_matrix(y_true, y_pred).flatten()) >= 100
    assert matrix_text.count("\n") > 20, "numpy should wrap each 20-column row over 2 lines"

    result = parse_evaluate_output(text)

    assert result.confusion_matrix == confusion_matrix(y_true, y_pred).tolist()
    assert result.class_names == VOC_LIKE_CLASSES
    assert result.top1_accuracy == accuracy_score(y_true, y_pred)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred)
    for i, name in enumerate(VOC_LIKE_CLASSES):
        row = result.per_class[name]
        # sklearn prints "%.2f", so the parsed values equal sklearn's values at 2 decimals.
        printed = tuple(float(f"{value:.2f}") for value in (precision[i], recall[i], f1[i]))
        assert (row.precision, row.recall, row.f1) == printed
        assert row.support == support[i]
    assert result.weighted_avg.support == result.macro_avg.support == len(y_true)


def test_evaluate_tolerates_sklearn_warnings_merged_into_stdout():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 1])  # class 2 never predicted: sklearn warns
    warning = (
        "/usr/local/lib/python3.6/dist-packages/sklearn/metrics/classification.py:1437: "
        "UndefinedMetricWarning: Precision and F-score are ill-defined and being set to 0.0\n"
        "  'precision', 'predicted', average, warn_for)\n"
    )
    result = parse_evaluate_output(
        tao_evaluate_text(y_true, y_pred, ["a", "b", "c"], prefix=PREFIX_50, warning=warning)
    )
    assert result.per_class["c"] == ClassReport(0.0, 0.0, 0.0, 2)
    assert result.top1_accuracy == pytest.approx(4 / 6)


def test_evaluate_with_numpy_elided_matrix_falls_back_to_report_accuracy():
    y_true, y_pred = voc_like_predictions(n_classes=40, n_images=4000, seed=1)
    names = [f"class {i:02d}" for i in range(40)]
    text = tao_evaluate_text(y_true, y_pred, names)
    assert "..." in str(confusion_matrix(y_true, y_pred))  # 1600 cells > numpy's threshold
    result = parse_evaluate_output(text)
    assert result.confusion_matrix == []
    assert result.class_names == names
    assert result.top1_accuracy == round(accuracy_score(y_true, y_pred), 2)


@pytest.mark.parametrize(
    "remove, expected",
    [
        ("Evaluation Loss: 0.3027826488580344\n", "Evaluation Loss: <float>"),
        ("Evaluation Top K accuracy: 1.0\n", "Evaluation Top K accuracy: <float>"),
        ("Confusion Matrix\n", "Confusion Matrix"),
        ("                  precision    recall  f1-score   support\n", "f1-score"),
    ],
    ids=["loss", "top-k", "matrix marker", "report header"],
)
def test_evaluate_missing_lines_are_parse_errors_quoting_the_expected_line(remove, expected):
    text = sample("tao3_evaluate.txt")
    assert remove in text
    with pytest.raises(ParseError) as error:
        parse_evaluate_output(text.replace(remove, ""))
    assert expected in str(error.value)
    assert "last lines of the output" in str(error.value)
    assert "|     weighted avg       0.95" in str(error.value)


def test_evaluate_truncated_matrix_is_a_parse_error():
    text = sample("tao3_evaluate.txt").split(" [  3 233]]")[0]
    with pytest.raises(ParseError, match="brackets never close"):
        parse_evaluate_output(text)


def test_evaluate_matrix_and_report_size_mismatch_is_a_parse_error():
    text = sample("tao3_evaluate.txt").replace(
        "[[ 70  12]\n [  3 233]]", "[[ 70  12  0]\n [  3 233  0]\n [  0   0  0]]"
    )
    with pytest.raises(ParseError, match="3x3 but the classification report lists 2 classes"):
        parse_evaluate_output(text)


# --- prune, inference, export -----------------------------------------------------------------


@pytest.mark.parametrize("convert", [str, as_tao_50], ids=["3.x logger", "5.0 logger"])
def test_prune_ratio_from_real_3x_output(convert):
    assert parse_prune_output(convert(sample("tao3_prune.txt"))) == pytest.approx(
        0.6353601900291853
    )


def test_prune_output_without_ratio_is_a_parse_error():
    with pytest.raises(ParseError, match=r"Pruning ratio \(pruned model / original model\)"):
        parse_prune_output("Loading model\nERROR: wrong key\n")


def test_inference_csv_rows(tmp_path):
    path = tmp_path / "result.csv"
    path.write_text(
        "/data/test/cat/1.jpg,cat,0.9876\n"
        "/data/test/my,odd,dir/2.png,dog,0.51\n"  # unquoted commas in the path
        '"/data/test/quoted,dir/3.jpeg",potted plant,1.0\n'
        "\n"
    )
    assert read_inference_csv(path) == [
        Prediction("/data/test/cat/1.jpg", "cat", 0.9876),
        Prediction("/data/test/my,odd,dir/2.png", "dog", 0.51),
        Prediction("/data/test/quoted,dir/3.jpeg", "potted plant", 1.0),
    ]


def test_inference_csv_skips_a_header_and_rejects_bad_rows(tmp_path):
    path = tmp_path / "result.csv"
    path.write_text("image,label,confidence\n/a.jpg,cat,0.5\n/b.jpg,dog,high\n")
    with pytest.raises(ParseError, match=rf"{path}:3: probability 'high' is not a number"):
        read_inference_csv(path)
    path.write_text("/a.jpg,cat\n")
    with pytest.raises(ParseError, match=rf"{path}:1: expected"):
        read_inference_csv(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Using input nodes: ['input_1']\nUsing output nodes: ['predictions/Softmax']\n"
            "Loaded model\n" + PREFIX_3X + "Saving exported model to /ws/export/final_model.etlt\n",
            "/ws/export/final_model.etlt",
        ),
        (PREFIX_50 + "Saving exported model to /ws/export/model.onnx  \n", "/ws/export/model.onnx"),
        ("Loaded model\n", None),
    ],
    ids=["3.x", "5.0", "missing"],
)
def test_export_output_path(text, expected):
    assert parse_export_output(text) == expected


def test_scores_from_predictions_equal_sklearn_exactly_at_101_classes():
    """The matrix and per-class P/R/F1 built from per-image labels match scikit-learn's
    confusion_matrix and precision_recall_fscore_support (zero_division=0) exactly."""
    import random

    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from tao_kfp.parsers import class_scores, confusion_from_labels, top1_accuracy

    names = [[f"class {i}", f"c__{i}", f"{i}_x", f"{i}"][i % 4] for i in range(101)]
    rng = random.Random(7)
    truths = [rng.choice(names) for _ in range(3000)]
    predictions = [t if rng.random() < 0.7 else rng.choice(names[:90]) for t in truths]
    matrix = confusion_from_labels(truths, predictions, names)
    assert matrix == sklearn_metrics.confusion_matrix(truths, predictions, labels=names).tolist()
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        truths, predictions, labels=names, zero_division=0
    )
    scores = class_scores(matrix, names)
    for i, name in enumerate(names):
        assert scores[name].precision == pytest.approx(precision[i], abs=1e-12)
        assert scores[name].recall == pytest.approx(recall[i], abs=1e-12)
        assert scores[name].f1 == pytest.approx(f1[i], abs=1e-12)
        assert scores[name].support == support[i]
    assert top1_accuracy(matrix) == pytest.approx(
        sklearn_metrics.accuracy_score(truths, predictions), abs=1e-12
    )


def test_a_label_outside_the_class_map_is_named():
    from tao_kfp.parsers import ParseError, confusion_from_labels

    with pytest.raises(ParseError, match="'ghost' is not in the class map"):
        confusion_from_labels(["a"], ["ghost"], ["a", "b"])


def test_101_class_printout_is_elided_by_numpy_and_not_parsed_as_a_matrix():
    """numpy summarises arrays over 1000 elements (threshold=1000): 32x32 and up print '...'."""
    import numpy as np

    from tao_kfp.parsers import parse_evaluate_output

    matrix = np.eye(101, dtype=np.int64) * 3
    names = [f"c{i}" for i in range(101)]
    report = "\n".join(f"{n:>12}       1.00      1.00      1.00         3" for n in names)
    text = (
        "Evaluation Loss: 0.1\nEvaluation Top K accuracy: 1.0\nConfusion Matrix\n"
        f"{matrix}\nClassification Report\n"
        "              precision    recall  f1-score   support\n\n"
        f"{report}\n\n    accuracy                           1.00       303\n"
        "   macro avg       1.00      1.00      1.00       303\n"
        "weighted avg       1.00      1.00      1.00       303\n"
    )
    parsed = parse_evaluate_output(text)
    assert "..." in str(matrix) and parsed.confusion_matrix == []
    assert len(parsed.per_class) == 101
