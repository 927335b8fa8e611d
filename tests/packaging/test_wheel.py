"""imgcache as a site installs it: built into an sdist and a wheel, installed from the
wheel into a fresh virtual environment outside the checkout, and run from there.

The sources are copied out of the checkout first (what git tracks, plus new files
it does not ignore), so the build never writes into the work tree; `python -m
build` makes the sdist and then the wheel from the sdist, so a file the sdist
lacks is missing from the wheel too. The install takes its dependencies from the
package index (pip caches them after the first run). Every command then runs
from a directory outside the checkout, with the checkout's `.venv` off PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.builders import have, make_rootfs, make_squashfs
from tests.e2e.test_tmux import Tmux

# One worker builds and installs once for every test here.
pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("packaging")]

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
#: Not sources, wherever they are (when git cannot list the sources).
_NOT_SOURCES = {".git", ".venv", "__pycache__", "build", "dist", ".pytest_cache", ".ruff_cache"}


def sources() -> list[str]:
    """The checkout's files as a clone would have them, with uncommitted work."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode().split("\0")  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        listed = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if not _NOT_SOURCES & set(p.relative_to(ROOT).parts) and ".egg-info" not in str(p)
        ]
    # A file deleted in the work tree is still listed by git until the deletion is committed.
    return sorted(rel for rel in listed if rel and (ROOT / rel).is_file())


def run(*argv: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=300, check=False, **kwargs
    )
    assert done.returncode == 0, (
        f"{argv}: {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("packaging")
    assert ROOT not in path.parents
    return path


@pytest.fixture(scope="module")
def dist(base) -> dict[str, Path]:
    """The sdist and the wheel, built from a copy of the sources."""
    src = base / "src"
    for rel in sources():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    run(sys.executable, "-m", "build", "--outdir", base / "dist", src, cwd=base)
    return {
        "sdist": base / "dist" / f"imgcache-{VERSION}.tar.gz",
        "wheel": base / "dist" / f"imgcache-{VERSION}-py3-none-any.whl",
    }


@pytest.fixture(scope="module")
def venv(base, dist) -> Path:
    """A fresh virtual environment outside the checkout with the wheel installed."""
    path = base / "venv"
    run(sys.executable, "-m", "venv", path)
    run(path / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
        dist["wheel"])  # fmt: skip
    return path


@pytest.fixture
def env(venv, tmp_path) -> dict[str, str]:
    """The environment of a shell outside the checkout: the venv's bin first, no .venv."""
    ours = str(Path(sys.executable).parent)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != ours]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["XDG_RUNTIME_DIR"] = str(tmp_path)  # the demo's directory
    return env


def installed(venv: Path, env: dict[str, str], *args: str, cwd: Path) -> str:
    return run(venv / "bin" / "imgcache", *args, env=env, cwd=cwd).stdout


def test_the_wheel_holds_every_module_and_the_package_data(dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        page = wheel.read(f"imgcache-{VERSION}.data/data/share/man/man1/imgcache.1")
        metadata = wheel.read(f"imgcache-{VERSION}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"imgcache-{VERSION}.dist-info/entry_points.txt").decode()
    files = sources()
    modules = {
        f"imgcache/{rel}"
        for rel in files
        if rel.startswith(("backends/", "tui/")) and rel.endswith(".py")
    }
    assert modules and not modules - names, sorted(modules - names)
    data = {
        f"imgcache/{rel}"
        for rel in files
        if re.fullmatch(
            r"backends/data/[^/]+\.toml|backends/data/apptainer/[^/]+|tui/[^/]+\.tcss", rel
        )
    }
    assert {"imgcache/backends/data/profiles.toml", "imgcache/tui/app.tcss"} <= data
    assert not data - names, sorted(data - names)
    # One top-level package: nothing that could clash with another project's names.
    assert {name.split("/")[0] for name in names} == {
        "imgcache",
        f"imgcache-{VERSION}.dist-info",
        f"imgcache-{VERSION}.data",
    }
    assert page == (ROOT / "man" / "imgcache.1").read_bytes()
    assert f"imgcache-{VERSION}.dist-info/licenses/LICENSE" in names
    assert "License-Expression: Apache-2.0" in metadata
    assert re.search(r"^Requires-Dist: argcomplete", metadata, re.M)
    assert "imgcache = imgcache.tui.cli:main" in entry_points


def test_the_sdist_holds_what_a_build_needs(dist):
    with tarfile.open(dist["sdist"]) as sdist:
        names = set(sdist.getnames())
    top = f"imgcache-{VERSION}"
    for rel in ("pyproject.toml", "README.md", "LICENSE", "man/imgcache.1", "tui/app.tcss",
                "backends/data/profiles.toml", "tui/cli.py"):  # fmt: skip
        assert f"{top}/{rel}" in names, rel


def test_the_installed_command_runs_from_the_wheel_outside_the_checkout(venv, env, tmp_path):
    where = json.loads(
        run(
            venv / "bin" / "python",
            "-c",
            "import json, imgcache.tui.cli as c, imgcache.backends as b; "
            "print(json.dumps([c.__file__, b.__file__]))",
            env=env,
            cwd=tmp_path,
        ).stdout
    )
    assert all(Path(p).is_relative_to(venv) for p in where), where
    assert installed(venv, env, "--version", cwd=tmp_path) == f"imgcache {VERSION}\n"
    help_text = installed(venv, env, "--help", cwd=tmp_path)
    assert "usage: imgcache" in help_text and "exit status:" in help_text
    # The man page where man looks: <prefix>/share/man/man1.
    page = venv / "share" / "man" / "man1" / "imgcache.1"
    assert page.read_bytes() == (ROOT / "man" / "imgcache.1").read_bytes()
    if shutil.which("man"):
        found = run("man", "-w", "imgcache", env={**env, "MANPATH": str(venv / "share" / "man")})
        assert found.stdout.strip() == str(page)


def test_list_and_defaults_json_on_a_real_cache(venv, env, tmp_path):
    if not have("mksquashfs"):
        pytest.skip("needs mksquashfs")
    cache = tmp_path / "enroot"
    make_squashfs(cache / "ubuntu+22.04.sqsh", rootfs=make_rootfs(tmp_path / "rootfs"))
    where = ["--cache", f"enroot:{cache}"]
    [row] = json.loads(installed(venv, env, "list", "--json", *where, cwd=tmp_path))
    assert row["path"] == str(cache / "ubuntu+22.04.sqsh")
    assert (row["ref"], row["format"], row["compression"]) == ("ubuntu:22.04", "squashfs", "zstd")
    # The shipped profiles (package data, read through importlib.resources).
    defaults = json.loads(installed(venv, env, "defaults", "--json", *where, cwd=tmp_path))
    assert defaults["profile"]["name"] and defaults["imgcache"] == {"version": VERSION}


def test_completion_from_the_installed_command(venv, env, tmp_path):
    script = installed(venv, env, "completion", "bash", cwd=tmp_path)
    assert "complete " in script and "_python_argcomplete" in script
    answer = tmp_path / "offered"
    line = "imgcache co"
    run(venv / "bin" / "imgcache", cwd=tmp_path,
        env={**env, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash", "COMP_LINE": line,
             "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n",
             "_ARGCOMPLETE_STDOUT_FILENAME": str(answer)})  # fmt: skip
    assert answer.read_text().split() == ["compress", "config", "completion"]


def test_pipx_installs_the_command_and_its_man_page(dist, env, tmp_path):
    # pipx's own places, in the test's directory instead of ~/.local.
    homes = {
        f"PIPX_{name}": str(tmp_path / name.lower()) for name in ("HOME", "BIN_DIR", "MAN_DIR")
    }
    env = {**env, **homes}
    run(sys.executable, "-m", "pipx", "install", dist["wheel"], env=env, cwd=tmp_path)
    command = Path(homes["PIPX_BIN_DIR"]) / "imgcache"
    assert run(command, "--version", env=env, cwd=tmp_path).stdout == f"imgcache {VERSION}\n"
    page = Path(homes["PIPX_MAN_DIR"]) / "man1" / "imgcache.1"
    assert page.read_bytes() == (ROOT / "man" / "imgcache.1").read_bytes()


def test_the_demo_opens_under_tmux_and_quits_with_q(venv, env, tmp_path):
    if not have("tmux"):
        pytest.skip("needs tmux")
    env = {**env, "TERM": "xterm-256color"}
    env.pop("TMUX", None)
    command = f"cd {tmp_path} && {venv}/bin/imgcache --demo; echo imgcache exited $?; sleep 60"
    term = Tmux(command, 120, 36, env)
    try:
        term.wait_for("q Quit", timeout=30)
        # The first scan of the demo ends with "updated HH:MM:SS" in the status line.
        screen = term.wait_for("updated ", timeout=30)
        assert re.search(r"Images (\d+)/\1", screen), screen
        term.keys("q")
        term.wait_for("imgcache exited 0")
    finally:
        term.close()
