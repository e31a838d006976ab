"""The upload applies the chart's value rules before any request, and never prints a credential."""

from __future__ import annotations

import pytest

from tao_kfp.upload import main
from tao_kfp.upload.inputs import normalise_cron


@pytest.mark.parametrize(
    "host",
    [
        "http://user:s3cr3tPW@ml-pipeline.kubeflow:8888",
        "http://ml-pipeline.kubeflow:8888/?token=s3cr3tPW",
    ],
)
def test_a_host_with_credentials_is_refused_without_printing_them(tmp_path, capsys, host):
    args = ["--host", host, "--package", str(tmp_path / "none.yaml"), "--pipeline-name", "p"]
    assert main([*args, "--version-prefix", "0.1.0"]) != 0
    out, err = capsys.readouterr()
    assert "--host (kfp.host) carries" in err
    assert "s3cr3tPW" not in out + err


def test_a_cron_outside_kfp_ranges_is_refused_and_a_date_that_never_comes_warned(capsys):
    from tao_kfp.upload import UploadError

    with pytest.raises(UploadError, match="'7' is outside the day of week field's range 0-6"):
        normalise_cron("0 3 * * 7")
    assert normalise_cron("0 0 31 2 *") == "0 0 0 31 2 *"
    assert "never starts" in capsys.readouterr().out
