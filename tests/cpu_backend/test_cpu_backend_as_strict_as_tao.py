"""The CPU stand-in fails where TAO fails (issue 19 sections 1-3), each case from TAO's source.

- Launcher re-split: tao_tensorflow1_backend 5.0 nvidia_tao_tf1/cv/common/entrypoint/
  entrypoint.py:153-189, 341-369, 399-403; tao_deploy 6.25.11 nvidia_tao_deploy/cv/common/
  entrypoint/entrypoint_proto.py:119-149, 229-248.
- Calibration TensorFile: tao_deploy engine/tensorfile.py:120-140 and
  engine/tensorfile_calibrator.py:86-104; tao_tensorflow1_backend 5.0
  common/export/tensorfile_calibrator.py:91-109 and common/export/app.py:119-123.
- inference: tao_tensorflow1_backend 5.0 makenet/scripts/inference.py:64, 71-75, 187-192,
  205-207, 293-311; calibration_tensorfile.py:88 with spec_loader.py:107, 127.
"""

from __future__ import annotations

import json
import re

from cpu_backend_helpers import KEY

TAO5_PREFIX = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[TAO Toolkit\] \[INFO\] \S+ \d+: "


# ---------------------------------------------------------------------------------------------
# section 1: the launcher joins every argument into `bash -c '...'` and re-splits it
# ---------------------------------------------------------------------------------------------


def test_a_path_with_a_space_is_split_in_two(chain, cli, tmp_path):
    spec = tmp_path / "my specs" / "spec.cfg"
    spec.parent.mkdir()
    spec.write_text(chain.outputs["spec"].read_text())
    output = tmp_path / "cal.tensor"
    code, _out, err = cli(["calibration_tensorfile", "-e", spec, "-o", output, "-m", 1])
    assert code == 2 and "unrecognized arguments: " + str(spec).split(" ", 1)[1] in err
    assert not output.exists()


def test_a_quote_breaks_the_launcher_string(chain, cli, tmp_path):
    output = tmp_path / "it's.tensor"
    code, _out, err = cli(
        ["calibration_tensorfile", "-e", chain.outputs["spec"], "-o", output, "-m", 1]
    )
    assert code == 1 and "No closing quotation" in err and not output.exists()


def test_a_model_key_with_a_space_breaks_every_tao5_step(chain, cli, tmp_path):
    code, out, err = cli(
        ["--tao-version", "5", "prune", "-m", chain.outputs["model"], "-k", "my key",
         "-o", tmp_path / "pruned.hdf5"]
    )  # fmt: skip
    assert code == 255 and "unrecognized arguments: key" in err
    assert out.strip().endswith("Execution status: FAIL")


def test_tao5_launcher_closes_with_its_status_line(chain, calibration_file, cli, tmp_path):
    code, out, err = cli(
        ["--tao-version", "5", "calibration_tensorfile", "-e", chain.outputs["spec"],
         "-o", tmp_path / "c.tensor", "-m", 1]
    )  # fmt: skip
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "Execution status: PASS"
    assert re.search(TAO5_PREFIX + "Calibration tensorfile written.", out)


# ---------------------------------------------------------------------------------------------
# section 2: calibration reads --batches batches of --batch_size from the TensorFile
# ---------------------------------------------------------------------------------------------


def int8_args(chain, calibration_file, tmp_path, batches, batch_size):
    return [
        "export", "-m", chain.outputs["model"], "-k", KEY, "-e", chain.outputs["spec"],
        "-o", tmp_path / "m.etlt", "--data_type", "int8", "--cal_data_file", calibration_file,
        "--cal_cache_file", tmp_path / "cal.bin", "--batches", batches, "--batch_size", batch_size,
    ]  # fmt: skip


def test_more_batches_than_the_tensorfile_holds_fail_with_index_error(
    chain, calibration_file, cli, tmp_path
):
    """The fixture's TensorFile holds 3 batches of 32 (batch_size_per_gpu)."""
    code, _out, err = cli(int8_args(chain, calibration_file, tmp_path, 4, 32))
    assert code == 1 and "IndexError: tuple index out of range" in err


def test_tao3_default_batch_size_16_is_no_problem_but_a_larger_one_fails(
    chain, calibration_file, cli, tmp_path
):
    code, _out, err = cli(int8_args(chain, calibration_file, tmp_path, 3, 64))
    assert code == 1
    assert "Batch size yielded from data source 32 < requested batch size from calibrator 64" in err


def test_gen_trt_engine_checks_the_tensorfile_too(
    chain, int8_export, calibration_file, cli, tmp_path
):
    code, out, err = cli(
        ["--tao-version", "5", "gen_trt_engine", "-m", int8_export["etlt"],
         "-e", chain.outputs["spec"], "-r", tmp_path, "--data_type", "int8",
         "--cal_data_file", calibration_file, "--cal_cache_file", tmp_path / "c.bin",
         "--batches", 10, "--batch_size", 32, "--engine_file", tmp_path / "e.engine"]
    )  # fmt: skip
    assert code == 1 and "IndexError" in err
    assert "Execution status: FAIL" in out


# ---------------------------------------------------------------------------------------------
# section 3: -cm required, specs validated, TAO 5 names and silent failures
# ---------------------------------------------------------------------------------------------


def test_inference_requires_a_classmap(chain, cli, tmp_path):
    code, _out, err = cli(
        ["inference", "-m", chain.outputs["model"], "-k", KEY, "-e", chain.outputs["spec"],
         "-d", tmp_path]
    )  # fmt: skip
    assert code == 2 and "-cm/--classmap" in err


def test_calibration_tensorfile_and_inference_validate_the_spec(chain, cli, tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text(chain.outputs["spec"].read_text().replace("n_workers: 2", "n_workers: 0"))
    code, _out, err = cli(["calibration_tensorfile", "-e", bad, "-o", tmp_path / "c", "-m", 1])
    assert code == 1 and "n_workers" in err
    classmap = chain.outputs["results"] / "classmap.json"
    code, _out, err = cli(
        ["inference", "-m", chain.outputs["model"], "-k", KEY, "-e", bad, "-cm", classmap,
         "-d", tmp_path]
    )  # fmt: skip
    assert code == 1 and "n_workers" in err


def test_tao5_has_no_use_imagenet_head(chain, cli, tmp_path):
    spec = tmp_path / "head.cfg"
    spec.write_text(
        chain.outputs["spec"]
        .read_text()
        .replace('arch: "resnet"', 'arch: "resnet"\n  use_imagenet_head: true')
    )
    code, out, err = cli(
        ["--tao-version", "5", "calibration_tensorfile", "-e", spec, "-o", tmp_path / "c", "-m", 1]
    )
    assert code == 255 and 'no field named "use_imagenet_head"' in err
    assert "Execution status: FAIL" in out
    code, _out, err = cli(["calibration_tensorfile", "-e", spec, "-o", tmp_path / "c3", "-m", 1])
    assert code == 0, err


def test_tao5_inference_on_a_folder_without_images_exits_0_but_failed(chain, cli, tmp_path):
    empty, results = tmp_path / "empty", tmp_path / "results"
    empty.mkdir()
    classmap = chain.outputs["results"] / "classmap.json"
    args = ["--tao-version", "5", "inference", "-m", chain.outputs["model"], "-k", KEY, "-e",
            chain.outputs["spec"], "-cm", classmap, "-d", empty]  # fmt: skip
    code, out, err = cli([*args, "-r", results])
    assert code == 0 and out.strip().endswith("Execution status: PASS"), err
    status = [json.loads(line) for line in (results / "status.json").read_text().splitlines()]
    assert status[-1]["status"] == "FAILURE" and (results / "result.csv").read_text() == ""
    code, out, err = cli(args)
    assert code == 255 and "s_logger" in err
