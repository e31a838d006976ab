"""run_tao: streams output, redacts secrets, reports failures with the fix."""

from __future__ import annotations

import json
import sys

import pytest

from tao_kfp.tao import TaoCommandError, key_args, redact, run_tao

SENTINEL = "s3ntinel-VALUE-do-not-leak-9f2c"
ECHO = f"{sys.executable} -c"


def test_output_is_streamed_and_returned_with_secrets_redacted(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TAO_ENTRYPOINT", ECHO)
    monkeypatch.setenv("TAO_MODEL_KEY", SENTINEL)
    log = tmp_path / "logs" / "tao.log"
    script = "import sys; print('key is', sys.argv[1]); print('done')"
    output = run_tao([script, SENTINEL], log_path=log)
    printed = capsys.readouterr().out
    for text in (output, printed, log.read_text()):
        assert SENTINEL not in text
    assert "key is ****" in output
    assert "done" in printed
    assert "+ " in printed and "****" in printed.splitlines()[0]  # the echoed command too


@pytest.mark.parametrize("key", ["it's-my key", 'a"b$c d', "plain"])
def test_the_echoed_command_hides_a_key_that_needs_quoting(monkeypatch, capsys, key):
    monkeypatch.setenv("TAO_ENTRYPOINT", ECHO)
    monkeypatch.setenv("TAO_MODEL_KEY", key)
    with pytest.raises(TaoCommandError) as error:
        run_tao(["import sys; sys.exit(1)", "-k", key])
    printed = capsys.readouterr().out
    for text in (printed, str(error.value)):
        assert "-k '****'" in text or "-k ****" in text
        assert "my key" not in text and "b$c" not in text and "plain" not in text


def test_explicit_secrets_are_redacted(monkeypatch, capsys):
    monkeypatch.setenv("TAO_ENTRYPOINT", ECHO)
    output = run_tao(["print('token abc123xyz')"], secrets=["abc123xyz"])
    assert output.strip() == "token ****"
    assert "abc123xyz" not in capsys.readouterr().out


def test_non_zero_exit_raises_with_the_tail(monkeypatch):
    monkeypatch.setenv("TAO_ENTRYPOINT", ECHO)
    with pytest.raises(TaoCommandError, match="exit code 3") as error:
        run_tao(["import sys; print('bad spec'); sys.exit(3)"])
    assert "bad spec" in str(error.value)


def test_execution_status_fail_raises_even_with_exit_zero(monkeypatch):
    monkeypatch.setenv("TAO_ENTRYPOINT", ECHO)
    with pytest.raises(TaoCommandError, match="Execution status: FAIL"):
        run_tao(["print('2023 [TAO Toolkit] [INFO] root 1: Execution status: FAIL')"])


def test_missing_command_says_which_setting_to_change(monkeypatch):
    monkeypatch.setenv("TAO_ENTRYPOINT", "no-such-tao-command")
    with pytest.raises(TaoCommandError, match="tao.entrypoint"):
        run_tao(["train"])


def test_converter_uses_its_own_variable(monkeypatch):
    monkeypatch.setenv("TAO_ENTRYPOINT", "no-such-tao-command")
    monkeypatch.setenv("TAO_CONVERTER", ECHO)
    assert run_tao(["print('engine')"], command_env="TAO_CONVERTER").strip() == "engine"


def test_key_args(monkeypatch):
    monkeypatch.setenv("TAO_MODEL_KEY", "k")
    assert key_args() == ["-k", "k"]
    monkeypatch.delenv("TAO_MODEL_KEY")
    assert key_args() == []


def test_a_missing_key_is_reported_for_tao_but_not_for_the_cpu_backend(monkeypatch, capsys):
    monkeypatch.delenv("TAO_MODEL_KEY", raising=False)
    monkeypatch.setenv("TAO_ENTRYPOINT", "classification")
    key_args()
    assert "TAO_MODEL_KEY is not set" in capsys.readouterr().out
    monkeypatch.setenv("TAO_ENTRYPOINT", "/venv/bin/python -m tao_kfp.cpu_backend")
    assert key_args() == [] and capsys.readouterr().out == ""


def test_redact_prefers_the_longest_secret():
    assert redact("abcdef abc", ["abc", "abcdef"]) == "**** ****"
    assert redact("text", ["", None or ""]) == "text"


def test_tao_gets_the_image_system_path_back(monkeypatch):
    monkeypatch.setenv("TAO_ENTRYPOINT", ECHO)
    monkeypatch.setenv("TAO_KFP_SYSTEM_PATH", "/usr/local/sbin:/usr/bin")
    assert run_tao(["import os; print(os.environ['PATH'])"]).strip() == "/usr/local/sbin:/usr/bin"


def test_arguments_reach_tao_as_a_list_never_re_split(monkeypatch, tmp_path):
    """Paths and keys with spaces, quotes and shell characters arrive as one argument each."""
    monkeypatch.setenv("TAO_ENTRYPOINT", ECHO)
    monkeypatch.setenv("TAO_MODEL_KEY", "k ey'\"$HOME;")
    tricky = [str(tmp_path / "my data" / 'it\'s "x" $(ls).png'), "a b", "*", ""]
    script = "import json, sys; print('ARGV=' + json.dumps(sys.argv[1:]))"
    output = run_tao([script, *tricky, *key_args()], secrets=())
    argv = json.loads(output.split("ARGV=", 1)[1].splitlines()[0])
    assert argv[:4] == tricky
    assert argv[4] == "-k"  # the key itself is redacted from the returned output


def test_key_is_required_on_tao3_evaluate_and_inference_only(monkeypatch):
    monkeypatch.delenv("TAO_MODEL_KEY", raising=False)
    monkeypatch.delenv("TAO_VERSION", raising=False)
    with pytest.raises(TaoCommandError, match="require -k"):
        key_args(required_by_3x=True)
    assert key_args() == []
    monkeypatch.setenv("TAO_VERSION", "5")
    assert key_args(required_by_3x=True) == []
