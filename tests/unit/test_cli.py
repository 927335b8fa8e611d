"""The installed `imgcache` command, run as a user would, on caches built by the real tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import have, make_rootfs, make_sif, make_squashfs, truncated_copy

IMGCACHE = str(Path(sys.executable).parent / "imgcache")


def imgcache(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMGCACHE, *args], capture_output=True, text=True, timeout=60, check=False, **kwargs
    )


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> tuple[Path, Path]:
    if not have("mksquashfs", "siftool"):
        pytest.skip("needs mksquashfs and siftool")
    base = tmp_path_factory.mktemp("cli")
    sif_root = base / "sif"
    enroot_root = base / "enroot"
    (sif_root / "nvcr.io" / "nvidia").mkdir(parents=True)
    enroot_root.mkdir()
    rootfs = make_rootfs(base / "rootfs")
    zstd = make_squashfs(base / "zstd.sqsh", rootfs=rootfs)
    make_sif(sif_root / "nvcr.io" / "nvidia" / "pytorch:25.09-py3.sif", squashfs=zstd)
    make_squashfs(
        enroot_root / "nvidia+pytorch+25.09-py3.sqsh", comp="lzo", options=["-noD"], rootfs=rootfs
    )
    truncated_copy(zstd, enroot_root / "ubuntu+22.04.sqsh", 2000)
    return sif_root, enroot_root


pytestmark = pytest.mark.tools


def test_list_json_schema_and_values(caches):
    sif_root, enroot_root = caches
    result = imgcache(
        "list", "--json", "--cache", f"apptainer:{sif_root}", "--cache", f"enroot:{enroot_root}"
    )
    assert result.returncode == 0, result.stderr
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert set(rows) == {
        "pytorch:25.09-py3.sif",
        "nvidia+pytorch+25.09-py3.sqsh",
        "ubuntu+22.04.sqsh",
    }
    sif = rows["pytorch:25.09-py3.sif"]
    assert sif["cache"] == "singularity"
    assert sif["ref"] == "nvcr.io/nvidia/pytorch:25.09-py3"
    assert (sif["format"], sif["compression"], sif["data_compressed"]) == ("sif", "zstd", True)
    assert sif["block_size"] == 131072
    assert sif["mtime"].endswith("+00:00")
    assert sif["path"] == str(sif_root / "nvcr.io/nvidia/pytorch:25.09-py3.sif")
    for key in ("size", "atime", "owner", "mode", "findings"):
        assert key in sif
    lzo = rows["nvidia+pytorch+25.09-py3.sqsh"]
    assert lzo["ref"] == "nvidia/pytorch:25.09-py3"
    assert (lzo["compression"], lzo["data_compressed"]) == ("lzo", False)
    assert lzo["findings"] == ["uncompressed", "legacy-codec"]
    broken = rows["ubuntu+22.04.sqsh"]
    assert broken["findings"] == ["corrupt"]
    assert "truncated" in broken["reasons"]["corrupt"]


def test_list_filter_and_plain_table(caches):
    _, enroot_root = caches
    result = imgcache("list", "--finding", "corrupt", "--cache", f"enroot:{enroot_root}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "CACHE", "FORMAT", "COMP", "SIZE", "AGE", "FINDINGS"]
    assert len(lines) == 2
    assert lines[1].startswith("ubuntu:22.04 ")
    assert lines[1].endswith("corrupt")
    # The cache option works before the command too.
    before = imgcache("--cache", f"enroot:{enroot_root}", "list", "--json")
    assert len(json.loads(before.stdout)) == 2


def test_defaults_json(caches):
    sif_root, _ = caches
    result = imgcache("defaults", "--json", "--cache", f"singularity:{sif_root}")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["profile"]["name"] == "pytorch-ngc-0.35.1"
    assert [d["env"] for d in doc["defaults"]] == ["cpu", "cuda", "rocm"]
    cpu = doc["defaults"][0]["caches"][0]
    assert cpu["state"] == "missing"
    assert cpu["path"] == str(sif_root / "determinedai/pytorch-ngc:0.35.1")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["list", "--cache", "singularity:/nonexistent/cache"], "no such directory"),
        (["list", "--cache", "docker:/tmp"], "unknown cache kind 'docker'"),
        (["list"], "no cache configured"),
        (["defaults", "--config", "/nonexistent.toml"], "no such file"),
    ],
)
def test_errors_are_one_clear_line(args, words):
    result = imgcache(*args)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("imgcache: ")


def test_unreadable_config_file_is_named(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[findings\n")
    result = imgcache("list", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: not valid TOML" in result.stderr


def test_help_reads_well():
    result = imgcache("--help")
    assert result.returncode == 0
    for words in ("list", "defaults", "--demo", "--cache KIND:PATH", "examples:"):
        assert words in result.stdout
    sub = imgcache("list", "--help")
    assert "--finding CODE" in sub.stdout
    assert "uncompressed" in sub.stdout


@pytest.mark.skipif(not shutil.which("head"), reason="needs head")
def test_closed_pipe_is_not_an_error(caches):
    _, enroot_root = caches
    cmd = f"{IMGCACHE} list --cache enroot:{enroot_root} | head -c 10"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, check=False
    )
    assert "Traceback" not in result.stderr
    assert "BrokenPipe" not in result.stderr


def test_findings_command_explains_the_vocabulary():
    result = imgcache("findings", "--json")
    codes = [t["code"] for t in json.loads(result.stdout)]
    assert codes == [
        "corrupt",
        "incomplete",
        "unshared",
        "uncompressed",
        "legacy-codec",
        "duplicate",
        "superseded",
        "stale",
    ]


def test_demo_create_then_list(tmp_path):
    result = imgcache("demo", "create", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    config = tmp_path / "demo" / "config.toml"
    assert f"imgcache list --config {config}" in result.stdout
    listed = imgcache("list", "--json", "--config", str(config))
    assert len(json.loads(listed.stdout)) > 20
    assert os.path.isdir(tmp_path / "demo" / "enroot")
