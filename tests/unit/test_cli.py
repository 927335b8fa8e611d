"""The installed `imgcache` command, run as a user would, on caches built by the real tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
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
        "not-an-image",
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


def test_the_app_without_a_terminal_exits_at_once_with_one_line(tmp_path):
    # As a script or a cron job starts it: stdout to a pipe, stdin from /dev/null.
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    for args in (["--demo"], ["--cache", f"enroot:{tmp_path}"]):
        started = time.monotonic()
        result = subprocess.run(
            [IMGCACHE, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env=env,
        )
        took = time.monotonic() - started
        assert result.returncode == 2
        assert result.stderr == (
            "imgcache: the app needs a terminal; for scripts use `imgcache list`/`--json`\n"
        )
        assert result.stdout == ""
        assert took < 5, took
    assert not list(tmp_path.glob("imgcache-demo-*"))  # refused before the demo was written


def test_every_subcommand_says_whether_it_writes():
    """A new subcommand cannot forget read-only: `writes` must be declared for each."""
    import argparse

    from imgcache.tui.cli import build_parser

    def leaves(parser: argparse.ArgumentParser, name: str):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield name, parser
        for action in subs:
            for child, sub in action.choices.items():
                yield from leaves(sub, f"{name} {child}".strip())

    commands = dict(leaves(build_parser(), ""))
    assert {"pull", "add", "rm", "gc", "compress", "fix-perms", "trash", "list"} <= set(commands)
    for name, parser in commands.items():
        assert "writes" in parser._defaults, f"imgcache {name} does not declare writes"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["pull", "Not A Ref"], "Not A Ref: not an image reference: repository name must be "
                                "lowercase"),
        (["pull", "../../etc/passwd", "--to", "singularity"], "../../etc/passwd: not an image "
                                                              "reference"),
        (["add", "{file}", "BAD REF"], "BAD REF: not an image reference"),
    ],
)  # fmt: skip
def test_a_reference_the_grammar_refuses_is_a_usage_error(caches, tmp_path, args, words):
    sif_root, enroot_root = caches
    state = tmp_path / "state"
    image = next(enroot_root.glob("nvidia+*.sqsh"))
    argv = [a.format(file=image) for a in args]
    result = imgcache(
        *argv,
        "--cache",
        f"singularity:{sif_root}",
        env={**os.environ, "XDG_STATE_HOME": str(state)},
    )
    assert result.returncode == 2
    assert result.stderr.startswith("imgcache: ") and words in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not state.exists()  # no job was started, so no job log


def test_names_with_control_characters_print_escaped(caches, tmp_path):
    _, enroot_root = caches
    root = tmp_path / "hostile"
    root.mkdir()
    evil = root / "evil\x1b[31mred\nline.sqsh"
    shutil.copy(next(enroot_root.glob("nvidia+*.sqsh")), evil)
    link = root / "link\x1b]0;title\x07.sqsh"
    link.symlink_to(evil.name)
    where = ["--cache", f"enroot:{root}"]
    listed = imgcache("list", *where)
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "evil\\x1b[31mred\\nline" in listed.stdout
    assert len(listed.stdout.splitlines()) == 3  # header and two rows: no forged line
    refused = imgcache("rm", "--yes", str(link), *where)
    assert refused.returncode == 1
    assert "\x1b" not in refused.stderr and "\x07" not in refused.stderr
    assert "link\\x1b]0;title\\x07.sqsh is a symbolic link" in refused.stderr
    plan = imgcache("rm", str(evil), *where, stdin=subprocess.DEVNULL)
    assert plan.returncode == 2 and "\x1b" not in plan.stdout
    assert "evil\\x1b[31mred\\nline.sqsh" in plan.stdout
    done = imgcache("rm", "--yes", str(evil), *where)
    assert done.returncode == 0 and "\x1b" not in done.stdout
    listed = imgcache("trash", *where)
    assert "\x1b" not in listed.stdout and "evil\\x1b[31mred\\nline.sqsh" in listed.stdout
    # JSON needs no escaping of ours: it is JSON's own.
    doc = json.loads(imgcache("trash", "--json", *where).stdout)
    assert doc[0]["files"][0]["path"] == str(evil)
