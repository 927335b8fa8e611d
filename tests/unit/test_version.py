"""`imgcache --version`, the version in `--json` objects, and the exit statuses `--help` lists."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from tests.builders import have, make_rootfs, make_squashfs

IMGCACHE = str(Path(sys.executable).parent / "imgcache")
ROOT = Path(__file__).resolve().parents[2]


def imgcache(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMGCACHE, *args], capture_output=True, text=True, timeout=60, check=False, **kwargs
    )


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_prints_the_installed_distributions_version():
    done = imgcache("--version")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == f"imgcache {metadata.version('imgcache')}\n"
    # The metadata is the pyproject's: an install older than the checkout would differ.
    assert done.stdout == f"imgcache {project_version()}\n"


def test_version_wins_over_a_command_and_needs_no_config(tmp_path):
    # A broken config is the command's business, not --version's.
    bad = tmp_path / "config.toml"
    bad.write_text("[scan]\nworkers = 0\n")
    done = imgcache("--version", "--config", str(bad))
    assert done.returncode == 0 and done.stdout.startswith("imgcache ")


def test_help_lists_the_exit_statuses():
    done = imgcache("--help")
    assert done.returncode == 0
    epilog = done.stdout.split("exit status:\n", 1)[1]
    codes = [line.split()[0].rstrip(",") for line in epilog.splitlines() if line[2:3] != " "]
    assert codes == ["0", "1", "2", "130", "129"]
    assert "129, 143  stopped by SIGHUP or SIGTERM" in epilog
    assert "2         a usage or configuration error" in epilog
    assert "130       interrupted by Ctrl-C" in epilog


def test_the_exit_statuses_listed_are_the_ones_given(tmp_path):
    # 0, 2 and 1 here; 130 (Ctrl-C), 143 and 129 are tests/faults/test_signals.py's.
    assert imgcache("findings").returncode == 0
    bad_option = imgcache("list", "--no-such-option")
    assert bad_option.returncode == 2 and "unrecognized arguments" in bad_option.stderr
    missing = imgcache("list", "--cache", f"enroot:{tmp_path / 'nowhere'}")
    assert missing.returncode == 2
    read_only = imgcache("rm", "--read-only", "--yes", "x:1", "--cache", f"enroot:{tmp_path}")
    assert read_only.returncode == 2 and "read-only" in read_only.stderr
    refused = imgcache("rm", "--yes", "nothing:here", "--cache", f"enroot:{tmp_path}")
    assert refused.returncode == 1 and "no cached image is nothing:here" in refused.stderr


def test_json_objects_name_their_writer_and_arrays_keep_their_shape(tmp_path):
    stamp = {"version": metadata.version("imgcache")}
    where = ["--cache", f"enroot:{tmp_path}"]
    defaults = json.loads(imgcache("defaults", "--json", *where).stdout)
    assert defaults["imgcache"] == stamp and "defaults" in defaults and "profile" in defaults
    config = json.loads(imgcache("config", "--show", "--json", *where).stdout)
    assert config["imgcache"] == stamp and "settings" in config
    plan = json.loads(imgcache("gc", "--dry-run", "--json", *where).stdout)
    assert plan["imgcache"] == stamp and plan["items"] == []
    # Arrays stay arrays of the same records: `imgcache --version` gives the version there.
    listed = json.loads(imgcache("list", "--json", *where).stdout)
    assert listed == []
    findings = json.loads(imgcache("findings", "--json").stdout)
    assert isinstance(findings, list) and all("imgcache" not in f for f in findings)


@pytest.mark.tools
def test_a_trash_batch_records_the_version_that_deleted_it(tmp_path):
    if not have("mksquashfs"):
        pytest.skip("needs mksquashfs")
    cache = tmp_path / "enroot"
    cache.mkdir()
    image = make_squashfs(tmp_path / "img.sqsh", rootfs=make_rootfs(tmp_path / "rootfs"))
    shutil.copyfile(image, cache / "ubuntu+22.04.sqsh")
    where = ["--cache", f"enroot:{cache}"]
    done = imgcache("rm", "--yes", "ubuntu:22.04", *where)
    assert done.returncode == 0, done.stderr
    [batch] = json.loads(imgcache("trash", "--json", *where).stdout)
    assert batch["by"]["via"] == "rm"
    assert batch["by"]["imgcache"] == {"version": metadata.version("imgcache")}
