"""`imgcache pull --json` and `add --json`: one JSON document on stdout, progress on stderr.

Against the session's real registry; the images are checked with imgcache's probe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgcache.backends.inventory.model import Format
from tests.builders import make_squashfs
from tests.integration.conftest import META_REF
from tests.integration.helpers import cli, probed

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("registry")]


def test_pull_json_prints_one_document_with_each_job(tmp_path: Path) -> None:
    root = tmp_path / "sif"
    root.mkdir()
    where = ["--cache", f"singularity:{root}", "--backend", "builtin"]
    done = cli("pull", META_REF, "imgcache-test/meta:nope", *where, "--json")
    assert done.returncode == 1  # one of the two failed
    ok, failed = json.loads(done.stdout)  # the whole of stdout is one JSON document
    target = root / META_REF
    assert ok["kind"] == "pull" and ok["ref"] == META_REF and ok["state"] == "done"
    assert ok["path"] == str(target) and ok["cache"] == "singularity" and ok["root"] == str(root)
    assert ok["backend"].startswith("builtin") and Path(ok["log"]).is_file()
    assert isinstance(ok["seconds"], float)
    assert probed(target).format is Format.SIF
    assert failed["state"] == "failed" and failed["message"].startswith("skopeo: ")
    # The progress and the failure's line went to stderr.
    assert f"pull {META_REF} -> {target}: done" in done.stderr
    assert "imgcache-test/meta:nope" in done.stderr
    again = cli("pull", META_REF, *where, "--json")
    assert again.returncode == 0
    [present] = json.loads(again.stdout)
    assert present["state"] == "done" and present["message"].startswith("already present")


def test_add_json(tmp_path: Path) -> None:
    root = tmp_path / "enroot"
    root.mkdir()
    image = make_squashfs(tmp_path / "i.sqsh")
    done = cli("add", str(image), "x/y:1", "--cache", f"enroot:{root}", "--json")
    assert done.returncode == 0, done.stderr
    [job] = json.loads(done.stdout)
    assert job["kind"] == "add" and job["source"] == str(image) and job["state"] == "done"
    assert job["path"] == str(root / "x+y+1.sqsh")
    assert (root / "x+y+1.sqsh").read_bytes() == image.read_bytes()


def test_a_bad_reference_is_a_usage_error_with_json_too(tmp_path: Path) -> None:
    root = tmp_path / "sif"
    root.mkdir()
    done = cli("pull", "Not/A:Ref", "--cache", f"singularity:{root}", "--json")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("imgcache: Not/A:Ref: not an image reference")
