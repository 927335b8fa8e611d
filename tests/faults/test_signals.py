"""SIGTERM and SIGHUP clean up as Ctrl-C does: no temp, no scratch, no tool left running.

What `timeout`, Slurm at a job's time limit, systemd and a dropped SSH session
send. Each test sends the real signal to a real `imgcache pull` (builtin, through
a throttled proxy in front of the loopback registry, so it is caught mid-fetch),
`imgcache compress` (mid sqfs2tar | tar2sqfs) or the app in a real terminal
(tmux), and checks the exit status (128 + signal, as other tools exit) and what
is left: nothing under the cache but the images, nothing in the scratch
directory, none of the tools imgcache had started.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from imgcache.backends.inventory.defaults import load_profiles
from tests.builders import have, make_squashfs
from tests.faults.conftest import FAULT_REF, need
from tests.faults.helpers import all_gone, children, sha256, start, temps, wait_for

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("registry")]

IMGCACHE = Path(sys.executable).with_name("imgcache")


def _scratch() -> list[str]:
    return os.listdir(os.environ["IMGCACHE_TMPDIR"])


def _pull(root: Path, **popen: object) -> subprocess.Popen[str]:
    return start("pull", FAULT_REF, "--to", f"enroot:{root}", "--backend", "builtin", **popen)


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_mid_pull_cleans_up(sig, status, slow, fault_image, tmp_path) -> None:
    need("skopeo", "umoci", "mksquashfs")
    root = tmp_path / "enroot"
    root.mkdir()
    proc = _pull(root)
    wait_for(lambda: temps(root) and slow.bytes > 256 * 1024, 60, "the fetch", proc)
    tools = list(children(proc.pid))
    assert tools
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == status, out
    assert "cancelled" in out and "Traceback" not in out, out
    assert all_gone(tools), "a tool outlived the cancel"
    assert os.listdir(root) in ([], [".imgcache-locks"]), os.listdir(root)
    assert _scratch() == [] and os.listdir(os.environ["TMPDIR"]) == []


def test_a_hangup_with_the_terminal_gone_cleans_up(slow, fault_image, tmp_path) -> None:
    """A dropped SSH session: the terminal goes away, then SIGHUP arrives."""
    need("skopeo", "umoci", "mksquashfs")
    root = tmp_path / "enroot"
    root.mkdir()
    master, slave = pty.openpty()
    proc = _pull(root, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        wait_for(lambda: temps(root) and slow.bytes > 256 * 1024, 60, "the fetch", proc)
        tools = list(children(proc.pid))
    finally:
        os.close(master)  # writes to the terminal now fail (EIO)
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(60) == 129
    assert all_gone(tools), "a tool outlived the hangup"
    assert os.listdir(root) in ([], [".imgcache-locks"]) and _scratch() == []


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_mid_compress_cleans_up(sig, status, tmp_path) -> None:
    need("mksquashfs", "sqfs2tar", "tar2sqfs")
    root = tmp_path / "enroot"
    tree = tmp_path / "tree" / "data"
    tree.mkdir(parents=True)
    (tree / "random.bin").write_bytes(os.urandom(24 * 1024 * 1024))
    image = make_squashfs(root / "app.sqsh", comp="gzip", rootfs=tree.parent)
    before = sha256(image)
    proc = start("compress", str(image), "--cache", f"enroot:{root}", "--comp", "xz", "--yes")
    wait_for(
        lambda: {"sqfs2tar", "tar2sqfs"} <= set(children(proc.pid).values()),
        60,
        "the pipeline",
        proc,
    )
    pipeline = list(children(proc.pid))
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == status, out
    assert "Traceback" not in out, out
    assert all_gone(pipeline, 5), "sqfs2tar | tar2sqfs outlived imgcache"
    assert temps(root) == [] and sha256(image) == before


# --- the app, in a real terminal ------------------------------------------------------


class _Tmux:
    """A private tmux server running one command in a 120x36 window, kept after it exits.

    A shell runs the command and writes its exit status to a file: tmux learns the
    status only when it reaps the process, which on a busy machine was seen to take
    longer than a test waits (the pane dead, the process a zombie for 20 s and more).
    """

    def __init__(self, argv: list[str], env: dict[str, str], status: Path) -> None:
        self.socket = f"imgcache-faults-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.status = status
        script = f'"$@"; echo "$?" > {status}'
        self.run("-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", "120", "-y", "36")
        self.run("set-option", "-t", "main", "remain-on-exit", "on")
        self.run("respawn-pane", "-k", "-t", "main", "sh", "-c", script, "sh", *argv)

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True, text=True, env=self.env, timeout=30, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    def pane(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", "main", fmt)

    def command_pid(self) -> int:
        """The pid of the command the pane's shell started."""
        shell = int(self.pane("#{pane_pid}"))
        wait_for(lambda: children(shell), 10, "the command to start")
        return next(iter(children(shell)))

    def exit_status(self, timeout: float = 60.0) -> str:
        """The command's exit status as its shell wrote it (128 + N when signal N killed it)."""
        wait_for(lambda: self.status.is_file() and self.status.read_text(), timeout, "an exit")
        return self.status.read_text().strip()

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        wait_for(lambda: text in self.run("capture-pane", "-p", "-t", "main"), timeout, text)

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], capture_output=True, env=self.env
        )


def _app_pulling(tmp_path: Path, rate_limited) -> tuple[_Tmux, Path, int]:
    """The app on an empty enroot cache, pulling the default images (P, then y)."""
    if not (have("tmux") and IMGCACHE.exists()):
        pytest.skip("needs tmux and the installed imgcache")
    need("skopeo", "umoci", "mksquashfs")
    root = tmp_path / "enroot"
    root.mkdir()
    env = {**os.environ, "TERM": "xterm-256color"}
    app = _Tmux([str(IMGCACHE), "--cache", f"enroot:{root}"], env, tmp_path / "exit-status")
    try:
        pid = app.command_pid()
        # P asks to pull every missing default, once the first scan is done.
        for _ in range(20):
            app.run("send-keys", "-t", "main", "P")
            try:
                app.wait_for("Pull the missing defaults", 1.5)
                break
            except AssertionError:
                continue
        app.run("send-keys", "-t", "main", "y")
        wait_for(lambda: temps(root), 30, "a pull under way")
    except BaseException:
        app.close()
        raise
    return app, root, pid


@pytest.fixture
def crawl(slow):
    """The throttled proxy slowed so far that even the small default images take a while."""
    slow.rate = 2048
    return slow


def test_sigterm_ends_the_app_and_its_jobs_cleanly(crawl, tmp_path) -> None:
    assert load_profiles()  # the default images the app pulls are the newest profile's
    app, root, pid = _app_pulling(tmp_path, crawl)
    try:
        tools = list(children(pid))
        os.kill(pid, signal.SIGTERM)
        assert app.exit_status() == "143"
    finally:
        app.close()
    assert all_gone(tools), "a tool outlived the app"
    assert temps(root) == [] and _scratch() == []


def test_a_dropped_terminal_ends_the_app_and_its_jobs_cleanly(crawl, tmp_path) -> None:
    app, root, pid = _app_pulling(tmp_path, crawl)
    tools = list(children(pid))
    app.close()  # the terminal goes away and the app gets SIGHUP, as over a dropped SSH
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 60, "the app to exit")
    assert all_gone(tools), "a tool outlived the app"
    assert temps(root) == [] and _scratch() == []
