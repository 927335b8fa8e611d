"""What other admins, kills, full disks and dying registries cannot do to the cache.

Each test asserts that no partial image is ever visible under a real name and
that the leftovers (hidden `.imgcache-` temps, scratch dirs) go away: at once
when imgcache itself sees the failure, on the next start when it was killed.
Slow pulls go through `ThrottledProxy`, a loopback proxy in front of the test
registry that a test can also cut off.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.jobs.queue import JobQueue
from imgcache.backends.jobs.states import JobRequest, JobState
from tests.integration.conftest import BIG_REF
from tests.integration.helpers import REPO, leftovers, probed, run_jobs
from tests.integration.registry import ThrottledProxy, throttled_mirror

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("registry")]

RATE = 1024 * 1024  # bytes a second: the 3 MiB layer takes about three seconds
TARGET = "imgcache-test+big+1.sqsh"


@pytest.fixture
def slow(seeded, tmp_path, monkeypatch) -> ThrottledProxy:
    """A throttled mirror of docker.io for this test, through a proxy it may cut off."""
    conf = tmp_path / "slow-registries.conf"
    proxy = throttled_mirror(seeded.registry.port, RATE, conf)
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    yield proxy
    proxy.kill()


def _enroot(tmp_path: Path, name: str = "enroot") -> Settings:
    root = tmp_path / name
    root.mkdir(exist_ok=True)
    return Settings(caches=(CacheSpec(CacheKind.ENROOT, str(root)),))


def _start_cli(root: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imgcache.tui.cli",
            "pull",
            BIG_REF,
            "--cache",
            f"enroot:{root}",
            "--backend",
            "builtin",
            *extra,
        ],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _lock_files(root: Path) -> list[Path]:
    return list((root / ".imgcache-locks").glob("*.lock"))


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if text.encode() in cmdline:
                    found.append(int(entry))
    return found


def test_a_second_admin_waits_then_gives_up_with_who(slow, tmp_path) -> None:
    root = Path(_enroot(tmp_path).caches[0].path)
    first = _start_cli(root)
    try:
        _wait_for(lambda: _lock_files(root), what="the first pull's lock")
        second = _start_cli(root, env={"IMGCACHE_LOCK_TIMEOUT": "0.5"})
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 1
        assert f"another imgcache is pulling {BIG_REF} (pid {first.pid} on host " in out
        patient = _start_cli(root)
        first_out, _ = first.communicate(timeout=60)
        patient_out, _ = patient.communicate(timeout=60)
    finally:
        for proc in (first,):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    assert first.returncode == 0, first_out
    assert patient.returncode == 0 and "already present" in patient_out, patient_out
    assert probed(root / TARGET).format is Format.SQUASHFS
    assert not leftovers(root) and not _lock_files(root)


def test_without_locks_two_pulls_still_leave_one_complete_file(slow, tmp_path) -> None:
    root = Path(_enroot(tmp_path).caches[0].path)
    env = {"IMGCACHE_NO_LOCKS": "1"}
    procs = [_start_cli(root, env=env), _start_cli(root, env=env)]
    outs = [p.communicate(timeout=90)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("already present" in out for out in outs) <= 1
    result = probed(root / TARGET)
    assert result.format is Format.SQUASHFS and not result.corrupt
    assert os.listdir(root) == [TARGET]  # no temp, no lock directory
    assert not os.listdir(os.environ["IMGCACHE_TMPDIR"])


def test_sigkill_mid_pull_leaves_only_a_hidden_temp_that_the_next_start_removes(
    slow, tmp_path
) -> None:
    settings = _enroot(tmp_path)
    root = Path(settings.caches[0].path)
    proc = _start_cli(root)
    _wait_for(lambda: leftovers(root) and slow.bytes > 256 * 1024, what="a pull under way")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    temps = leftovers(root)
    assert len(temps) == 1 and os.path.basename(temps[0]).startswith(".imgcache-")
    assert not (root / TARGET).exists()
    work = os.environ["IMGCACHE_TMPDIR"]
    # The tools died with imgcache (PR_SET_PDEATHSIG), not on after it.
    _wait_for(lambda: not _processes_mentioning(work), 10, "the tools to die")
    scratch = [os.path.join(work, d) for d in os.listdir(work)]
    assert len(scratch) == 1
    removed = JobQueue(settings).cleanup_stale()
    assert sorted(removed) == sorted([*temps, *scratch])
    assert not leftovers(root) and not os.listdir(work)
    slow.rate = 100 * RATE
    [status] = run_jobs(settings, JobRequest("import", BIG_REF, settings.caches[0]))
    assert status.state is JobState.DONE, status.message


def test_a_registry_that_goes_away_fails_the_job_cleanly(slow, tmp_path) -> None:
    settings = _enroot(tmp_path)
    root = Path(settings.caches[0].path)
    queue = JobQueue(settings)
    job = queue.submit(JobRequest("import", BIG_REF, settings.caches[0], backend="builtin"))
    _wait_for(lambda: slow.bytes > 256 * 1024, what="the download to start")
    slow.kill()
    assert queue.wait(timeout=90)
    status = queue.get(job.id)
    assert status.state is JobState.FAILED
    assert status.message.startswith("skopeo: ") and "\n" not in status.message
    assert "is the registry reachable?" in status.message
    assert not os.listdir(root) or os.listdir(root) == [".imgcache-locks"]
    assert not os.listdir(os.environ["IMGCACHE_TMPDIR"])


def test_cancel_stops_the_tools_and_removes_the_temp(slow, tmp_path) -> None:
    settings = _enroot(tmp_path)
    root = Path(settings.caches[0].path)
    queue = JobQueue(settings)
    job = queue.submit(JobRequest("import", BIG_REF, settings.caches[0], backend="builtin"))
    _wait_for(lambda: slow.bytes > 128 * 1024, what="the download to start")
    assert queue.cancel(job.id)
    assert queue.wait(timeout=30)
    assert queue.get(job.id).state is JobState.CANCELLED
    assert not leftovers(root) and not os.listdir(os.environ["IMGCACHE_TMPDIR"])
    assert not _processes_mentioning(os.environ["IMGCACHE_TMPDIR"])


def test_ctrl_c_cancels_and_cleans_up(slow, tmp_path) -> None:
    root = Path(_enroot(tmp_path).caches[0].path)
    proc = _start_cli(root)
    _wait_for(lambda: leftovers(root) and slow.bytes > 128 * 1024, what="a pull under way")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "cancelled" in out
    assert not leftovers(root) and not (root / TARGET).exists()


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs, so that any real image fills it."""
    mount = tmp_path / "full"
    mount.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN): {exc}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("kind", [CacheKind.ENROOT, CacheKind.SINGULARITY])
def test_a_full_filesystem_fails_with_the_filesystem_named(small_fs, tmp_path, kind) -> None:
    settings = Settings(caches=(CacheSpec(kind, str(small_fs)),))
    job = "import" if kind is CacheKind.ENROOT else "pull"
    [status] = run_jobs(settings, JobRequest(job, BIG_REF, settings.caches[0], backend="builtin"))
    assert status.state is JobState.FAILED
    assert status.message.startswith(f"no space left on {small_fs} "), status.message
    assert "need about 3." in status.message
    assert not leftovers(small_fs)
    assert not [p for p in small_fs.rglob("*") if p.is_file()]
