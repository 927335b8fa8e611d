"""End to end: the installed `imgcache` in a real terminal (tmux), driven by keys.

The cache is made by mksquashfs and siftool; the test reads the screen with
`tmux capture-pane` and asserts on what a person would see, in a plain
`TERM=xterm` (16 colours) at 80x24 and in a 256-colour terminal at 120x36.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.builders import have, make_rootfs, make_sif, make_squashfs

pytestmark = pytest.mark.tools

IMGCACHE = Path(sys.executable).with_name("imgcache")


class Tmux:
    """One private tmux server with one session running a command."""

    def __init__(self, command: str, width: int, height: int, env: dict[str, str]) -> None:
        self.socket = f"imgcache-e2e-{uuid.uuid4().hex[:8]}"
        self.env = env
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "main",
                   "-x", str(width), "-y", str(height), command)  # fmt: skip

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True, text=True, env=self.env, timeout=30, check=True,
        )  # fmt: skip
        return done.stdout

    def screen(self) -> str:
        """What the terminal shows now."""
        return self._tmux("capture-pane", "-p", "-t", "main")

    def keys(self, *keys: str, literal: bool = False) -> None:
        """Type keys (tmux key names, or text with `literal`)."""
        self._tmux("send-keys", "-t", "main", *(["-l"] if literal else []), *keys)

    def wait_for(self, text: str, timeout: float = 20.0, absent: bool = False) -> str:
        """The screen once `text` shows on it (or has gone, with `absent`)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if (text in screen) != absent:
                return screen
            if time.monotonic() > deadline:
                state = "still shows" if absent else "does not show"
                raise AssertionError(f"the screen {state} {text!r}:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the server."""
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, env=self.env
        )


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    if not have("tmux", "mksquashfs", "siftool"):
        pytest.skip("needs tmux, mksquashfs and siftool")
    if not IMGCACHE.exists():
        pytest.skip(f"imgcache is not installed next to {sys.executable}")
    base = tmp_path_factory.mktemp("e2e-images")
    rootfs = make_rootfs(base / "rootfs")
    zstd = make_squashfs(base / "zstd.sqsh", rootfs=rootfs)
    return {
        "zstd": zstd,
        "nod": make_squashfs(base / "nod.sqsh", options=["-noD"], rootfs=rootfs),
        "sif": make_sif(base / "image.sif", squashfs=zstd),
    }


def _env(tmp_path: Path, term: str) -> dict[str, str]:
    """The terminal's environment: no machine config, job logs in the test's directory."""
    env = {**os.environ, "TERM": term, "IMGCACHE_CONFIG": "", "IMGCACHE_DETERMINED_CONFIG": ""}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env.pop("COLORTERM", None)
    env.pop("TMUX", None)
    return env


@pytest.mark.parametrize(
    ("term", "size"),
    [("xterm", (80, 24)), ("xterm-256color", (120, 36))],
    ids=["xterm-80x24", "256color-120x36"],
)
def test_browse_filter_details_help_live_quit(tmp_path, images, term, size):
    enroot, sif = tmp_path / "enroot", tmp_path / "sif"
    enroot.mkdir()
    shutil.copyfile(images["zstd"], enroot / "ubuntu+22.04.sqsh")
    shutil.copyfile(images["nod"], enroot / "nvidia+pytorch+25.09-py3.sqsh")
    (sif / "library").mkdir(parents=True)
    shutil.copyfile(images["sif"], sif / "library/alpine:3.19")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[cache]]\nkind = "enroot"\npath = "{enroot}"\n\n'
        f'[[cache]]\nkind = "apptainer"\npath = "{sif}"\n'
    )
    env = _env(tmp_path, term)
    # The shell reports the exit status on screen, as a person would see it.
    command = f"env TERM={term} {IMGCACHE} --config {config}; echo imgcache exited $?; sleep 60"
    term_tmux = Tmux(command, *size, env)
    try:
        screen = term_tmux.wait_for("Images 3/3")
        assert "3 images" in screen
        assert "ubuntu:22.04" in screen and "nvidia/pytorch:25.09-py3" in screen
        assert "alpine:3.19" in screen
        assert "raw" in screen  # the -noD image's badge
        assert "inotify" in term_tmux.wait_for("inotify")

        # Text filter.
        term_tmux.keys("/")
        term_tmux.keys("nvidia", literal=True)
        screen = term_tmux.wait_for("Images 1/3")
        assert "ubuntu:22.04" not in screen
        term_tmux.keys("Escape")
        term_tmux.wait_for("Images 3/3")

        # Finding filter: f, down to "uncompressed", Enter.
        term_tmux.keys("f")
        term_tmux.wait_for("Show only")
        # all, any, corrupt, incomplete, not-an-image, unshared, uncompressed
        term_tmux.keys("j", "j", "j", "j", "j", "j", "Enter")
        screen = term_tmux.wait_for("only uncompressed")
        assert "Images 1/3" in screen

        # Details of the selected image.
        term_tmux.keys("Enter")
        screen = term_tmux.wait_for("esc Back")  # the details screen's footer
        assert "Details · nvidia/pytorch:25.09-py3" in screen
        assert "Uncompressed: it stores data blocks uncompressed (-noD)" in screen
        term_tmux.keys("G")  # the end of the details: the superblock's flags
        term_tmux.wait_for("data raw (-noD)")
        term_tmux.keys("Escape")
        term_tmux.wait_for("only uncompressed")
        term_tmux.keys("Escape")
        term_tmux.wait_for("Images 3/3")

        # Help lists the bindings.
        term_tmux.keys("?")
        screen = term_tmux.wait_for("Everywhere")
        assert "Rescan" in screen and "rescan" in screen and "Quit" in screen
        term_tmux.keys("Escape")
        term_tmux.wait_for("Images 3/3")

        # Another admin adds an image: it shows without a key pressed. How fast
        # is bench/imgcache.tui.py's figure (file changed -> on screen), not a timed test's.
        shutil.copyfile(images["zstd"], enroot / "alpine+3.20.sqsh")
        term_tmux.wait_for("alpine:3.20", timeout=10)
        assert "Images 4/4" in term_tmux.screen()

        term_tmux.keys("q")
        term_tmux.wait_for("imgcache exited 0", timeout=10)
    finally:
        term_tmux.close()


def test_read_only_offers_no_pull(tmp_path, images):
    enroot = tmp_path / "enroot"
    enroot.mkdir()
    shutil.copyfile(images["zstd"], enroot / "ubuntu+22.04.sqsh")
    args = f"--read-only --cache enroot:{enroot}"
    command = f"{IMGCACHE} {args}; echo imgcache exited $?; sleep 60"
    term_tmux = Tmux(command, 120, 36, _env(tmp_path, "xterm-256color"))
    try:
        term_tmux.wait_for("Images 1/1")
        screen = term_tmux.wait_for("? Help")  # the footer is on screen
        assert "Pull" not in screen
        term_tmux.keys("p")
        term_tmux.keys("P")
        term_tmux.keys("Space", "D", "X")  # no marks, no delete dialog, no gc plan
        term_tmux.keys("J")  # the jobs pane still opens, and says why it stays empty
        screen = term_tmux.wait_for("read-only: no jobs can be started")
        assert "Pull an image" not in screen and "Pull the missing" not in screen
        assert "marked" not in screen and "Delete" not in screen and "Garbage" not in screen
        term_tmux.keys("q")
        term_tmux.wait_for("imgcache exited 0", timeout=10)
    finally:
        term_tmux.close()


def test_mark_and_delete_to_the_trash(tmp_path, images):
    enroot = tmp_path / "enroot"
    enroot.mkdir()
    shutil.copyfile(images["zstd"], enroot / "ubuntu+22.04.sqsh")
    doomed = enroot / "nvidia+pytorch+25.09-py3.sqsh"
    shutil.copyfile(images["nod"], doomed)
    command = f"{IMGCACHE} --cache enroot:{enroot}; echo imgcache exited $?; sleep 60"
    term_tmux = Tmux(command, 120, 36, _env(tmp_path, "xterm-256color"))
    try:
        term_tmux.wait_for("Images 2/2")
        term_tmux.keys("Space")  # marks the first row by name, and moves down
        screen = term_tmux.wait_for("1 marked")
        assert "*nvidia/pytorch:25.09-py3" in screen
        term_tmux.keys("D")
        term_tmux.wait_for("Delete 1 file")
        # The dialog's title shows first; its plan a frame later.
        screen = term_tmux.wait_for("nvidia+pytorch+25.09-py3.sqsh")
        assert "freed when the trash is purged" in screen
        term_tmux.keys("y")
        term_tmux.wait_for("Images 1/1")
        term_tmux.wait_for("moved to the trash")  # the job's line in the jobs pane
        assert not doomed.exists()
        assert list((enroot / ".imgcache-trash").rglob(doomed.name))
        term_tmux.keys("q")
        term_tmux.wait_for("imgcache exited 0", timeout=10)
    finally:
        term_tmux.close()
