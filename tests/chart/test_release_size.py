"""The release of the packaged chart stays far below Helm's 1 MiB limit.

(What the archive holds is tested once, in tests/release/test_package.py.)

Helm stores each release revision in a Secret (`sh.helm.release.v1.<name>.v<N>`) whose data
is base64(gzip(JSON of the release)), and a Secret holds at most 1 MiB. The release JSON
embeds the whole chart (every template and file base64'ed, as Go encodes []byte), the
values, the rendered manifest and the hooks. Without a cluster for `helm install`, this test
builds that JSON from the packaged chart and `helm template` output (hooks and tests
included), gzips and base64s it the same way, and fails above 512 KiB (half the limit).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile

import yaml
from chart_helpers import CI_DIR, template_args

LIMIT = 512 * 1024


def package(helm, chart_dir, tmp_path) -> dict:
    helm.run("package", str(chart_dir), "--destination", str(tmp_path))
    archive = next(tmp_path.glob("tao-kfp-*.tgz"))
    with tarfile.open(archive) as tar:
        return {
            member.name.split("/", 1)[1]: tar.extractfile(member).read()
            for member in tar.getmembers()
            if member.isfile()
        }


def test_release_secret_size(helm, chart_dir, tmp_path):
    files = package(helm, chart_dir, tmp_path)
    values_file = CI_DIR / "05-multi-user-values.yaml"
    manifest = helm.run(*template_args(chart_dir, [values_file])).stdout

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    chart = {
        "metadata": yaml.safe_load(files["Chart.yaml"]),
        "lock": None,
        "templates": [
            {"name": n, "data": b64(d)} for n, d in files.items() if n.startswith("templates/")
        ],
        "values": yaml.safe_load(files["values.yaml"]),
        "schema": b64(files["values.schema.json"]),
        "files": [
            {"name": n, "data": b64(d)}
            for n, d in files.items()
            if not n.startswith("templates/") and n not in ("Chart.yaml", "values.yaml")
        ],
    }
    release = {
        "name": "rel",
        "info": {"status": "deployed", "notes": ""},
        "chart": chart,
        "config": yaml.safe_load(values_file.read_text()),
        "manifest": manifest,
        "hooks": [],
        "version": 1,
        "namespace": "tao",
    }
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as gz:
        gz.write(json.dumps(release).encode())
    size = len(base64.b64encode(buffer.getvalue()))
    print(f"\nrelease Secret data (base64 gzip release JSON, {helm.name}): {size / 1024:.1f} KiB")
    assert size < LIMIT, f"release is {size / 1024:.1f} KiB, above the 512 KiB budget"
