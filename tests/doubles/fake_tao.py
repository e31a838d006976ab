"""A stand-in for TAO's `classification` and `converter` commands, for step unit tests.

Prints the TAO 3.x output layouts (docs/tao-output-formats.md) and writes the files TAO writes.
Every invocation's argv is appended as one JSON line to $FAKE_TAO_CALLS. $FAKE_TAO_EXT picks
the checkpoint extension (tlt for 3.x, hdf5 for 5.0).
"""

import json
import os
import sys
from pathlib import Path

from tao_kfp import spec as spec_module

PREFIX = "2022-03-08 07:36:56,729 [INFO] __main__: "


def flag(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def classes_of(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir())


def main(argv):
    with open(os.environ["FAKE_TAO_CALLS"], "a") as calls:
        calls.write(json.dumps(argv) + "\n")
    if os.environ.get("FAKE_TAO_FAIL") == argv[0]:
        print("Execution status: FAIL")
        return 0
    sub, args = argv[0], argv[1:]
    if sub == "train":
        spec = spec_module.load_spec(flag(args, "-e"))
        results = Path(flag(args, "-r"))
        (results / "weights").mkdir(parents=True, exist_ok=True)
        ext = os.environ.get("FAKE_TAO_EXT", "tlt")
        classes = classes_of(spec.train_config.train_dataset_path)
        (results / "classmap.json").write_text(json.dumps({c: i for i, c in enumerate(classes)}))
        print("Total params: 7,334,274")
        rows = ["epoch,acc,loss,lr,val_acc,val_loss"]
        epochs = spec.train_config.n_epochs
        for epoch in range(1, epochs + 1):
            (results / "weights" / f"{spec.model_config.arch}_{epoch:03d}.{ext}").write_bytes(
                b"w" * 1000 * epoch
            )
            print(f"Epoch {epoch}/{epochs}")
            print(
                f"7/7 [====] - 1s - loss: {1 / epoch:.4f} - acc: {0.5 + epoch / 100:.4f}"
                f" - val_loss: {1.1 / epoch:.4f} - val_acc: {0.45 + epoch / 100:.4f}"
            )
            rows.append(
                f"{epoch},{0.5 + epoch / 100},{1 / epoch},0.01,{0.45 + epoch / 100},{1.1 / epoch}"
            )
        (results / "training.csv").write_text("\n".join(rows) + "\n")
        print(f"{PREFIX}Total Val Loss: {1.1 / epochs}")
        print(f"{PREFIX}Total Val accuracy: {0.45 + epochs / 100}")
        print(f"{PREFIX}Training finished successfully.")
    elif sub == "evaluate":
        spec = spec_module.load_spec(flag(args, "-e"))
        assert Path(spec.eval_config.model_path).is_file(), spec.eval_config.model_path
        classes = classes_of(spec.eval_config.eval_dataset_path)
        n = len(classes)
        matrix = [
            [8 if i == j else (1 if j == (i + 1) % n else 0) for j in range(n)] for i in range(n)
        ]
        print(f"Found 90 images belonging to {n} classes.")
        print("Evaluation Loss: 0.30278")
        print("Evaluation Top K accuracy: 1.0")
        print("Confusion Matrix")
        import numpy as np

        print(np.array(matrix))  # numpy elides it beyond 1000 cells, as in TAO
        print("Classification Report")
        print("              precision    recall  f1-score   support\n")
        for c in classes:
            print(f"{c:>12}       0.89      0.89      0.89         9")
        print(f"\n    accuracy                           0.89        {9 * n}")
        print(f"   macro avg       0.89      0.89      0.89        {9 * n}")
        print(f"weighted avg       0.89      0.89      0.89        {9 * n}")
    elif sub == "prune":
        model, out = Path(flag(args, "-m")), Path(flag(args, "-o"))
        out.write_bytes(model.read_bytes()[: len(model.read_bytes()) // 2])
        print(
            "2022-03-08 07:39:09,820 [INFO] iva.common.magnet_prune: "
            "Pruning ratio (pruned model / original model): 0.5"
        )
    elif sub == "inference":
        # Double's shortcut: it "predicts" the class recorded by the step's labels.json beside
        # the folder (real TAO reads pixels), wrong only for the first image.
        folder = Path(flag(args, "-d"))
        classmap = json.loads(Path(flag(args, "-cm")).read_text())
        truth = json.loads((folder.parent / "labels.json").read_text())
        lines = []
        for index, image in enumerate(
            sorted(p.name for p in folder.iterdir() if p.suffix == ".png")
        ):
            label = truth[image] if index else sorted(classmap)[-1]
            lines.append(f"{os.path.join(str(folder), image)},{label},0.9{index % 10}")
        (folder / "result.csv").write_text("\n".join(lines) + "\n")
        print(f"{PREFIX}Inference complete. Result is saved at {folder / 'result.csv'}")
    elif sub == "calibration_tensorfile":
        out = Path(flag(args, "-o"))
        assert not out.exists()
        out.write_bytes(b"t" * 100)
        print("Calibration tensorfile written.")
    elif sub == "export":
        out = Path(flag(args, "-o"))
        assert not out.exists()
        out.write_bytes(b"e" * 500)
        if flag(args, "--data_type") == "int8":
            Path(flag(args, "--cal_cache_file")).write_bytes(b"c" * 50)
        print(f"Saving exported model to {out}")
    elif sub.endswith((".etlt", ".onnx")):  # converter: positional model first
        Path(flag(args, "-e")).write_bytes(b"engine" * 100)
    elif sub == "gen_trt_engine":  # tao-deploy's 5.x engine builder
        Path(flag(args, "--engine_file")).write_bytes(b"engine" * 100)
        Path(flag(args, "--cal_cache_file")).write_bytes(b"c" * 50)
    else:
        print(f"unknown subcommand {sub}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
