"""The job queue: states, concurrency, progress, logs, cancel, and the checks around every kind.

A test job kind registered here runs `sh` (a real program) and copies a squashfs
built by mksquashfs, so the queue and `jobkinds.base.execute` are exercised
without a registry; the real kinds are tested in tests/integration.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory import refs
from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.jobs import kinds as jobkinds
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.credentials import Credentials
from imgcache.backends.jobs.kinds.base import Backend, JobKind
from imgcache.backends.jobs.queue import JobQueue
from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
from tests.builders import have

SCRIPT = Backend("builtin", "test script", ("sh",))


class ScriptKind(JobKind):
    """Runs the shell snippet in `request.source`, then copies `image` to the temp."""

    name = "test-script"
    cache_kinds = (CacheKind.ENROOT,)
    formats = (Format.SQUASHFS,)
    image: str = ""
    runs = 0
    running = 0
    peak = 0
    lock = threading.Lock()

    def backends(self) -> list[Backend]:
        return [SCRIPT]

    def run(self, ctx: JobContext, backend: Backend) -> None:
        cls = type(self)
        with cls.lock:
            cls.runs += 1
            cls.running += 1
            cls.peak = max(cls.peak, cls.running)
        try:
            script = ctx.request.source or ""
            if script == "progress":
                for i in range(2000):
                    ctx.progress(i / 2000, f"step {i}")
                    time.sleep(0.0005)
            elif script == "enospc":
                raise OSError(errno.ENOSPC, "No space left on device", ctx.temp)
            elif script:
                ctx.run(["sh", "-c", script], env={"TEMP": ctx.temp})
            shutil.copyfile(cls.image, ctx.temp)
        finally:
            with cls.lock:
                cls.running -= 1


@pytest.fixture
def kind(probe_squashfs) -> type[ScriptKind]:
    jobkinds.get("pull")  # load the real kinds first
    ScriptKind.image = str(probe_squashfs)
    ScriptKind.runs = ScriptKind.running = ScriptKind.peak = 0
    jobkinds.register(ScriptKind())
    yield ScriptKind
    jobkinds.KINDS.pop(ScriptKind.name, None)


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    if not have("mksquashfs"):
        pytest.skip("needs mksquashfs")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("IMGCACHE_TMPDIR", str(tmp_path / "work"))
    (tmp_path / "work").mkdir()
    root = tmp_path / "enroot"
    root.mkdir()
    return Settings(caches=(CacheSpec(CacheKind.ENROOT, str(root)),), job_concurrency=2)


def _listing(settings: Settings) -> list[str]:
    """The cache's files, without the (empty) lock directory."""
    return sorted(n for n in os.listdir(settings.caches[0].path) if n != ".imgcache-locks")


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped in a container does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _request(settings: Settings, ref: str = "test/img:1", script: str = "", **kw) -> JobRequest:
    return JobRequest(ScriptKind.name, ref, settings.caches[0], source=script, **kw)


def _collect() -> tuple[list[JobStatus], object]:
    seen: list[JobStatus] = []
    lock = threading.Lock()

    def on_update(status: JobStatus) -> None:
        with lock:
            seen.append(status)

    return seen, on_update


def test_a_job_goes_queued_running_done_and_keeps_its_log(kind, settings) -> None:
    seen, on_update = _collect()
    queue = JobQueue(settings, on_update=on_update)
    job = queue.submit(_request(settings, script="echo tool output"))
    assert job.state is JobState.QUEUED and job.log_path.startswith(os.environ["XDG_STATE_HOME"])
    assert queue.wait(timeout=30)
    final = queue.get(job.id)
    assert final.state is JobState.DONE and final.message == "done" and final.fraction == 1.0
    assert final.target == os.path.join(settings.caches[0].path, "test+img+1.sqsh")
    assert final.backend == "test script"
    states = [s.state for s in seen if s.id == job.id]
    assert states[0] is JobState.QUEUED and states[-1] is JobState.DONE
    assert JobState.RUNNING in states
    log = queue.log_text(job.id)
    assert "$ sh -c 'echo tool output'" in log and "tool output" in log and "# done: done" in log
    queue.shutdown()
    assert os.path.isfile(final.log_path)
    assert _listing(settings) == ["test+img+1.sqsh"]


def test_concurrency_is_bounded(kind, settings) -> None:
    queue = JobQueue(settings)
    queue.submit_many(_request(settings, f"t/img:{i}", "sleep 0.3") for i in range(5))
    assert queue.wait(timeout=30)
    assert kind.runs == 5 and kind.peak == 2
    assert all(s.state is JobState.DONE for s in queue.jobs())


def test_cancel_a_queued_job(kind, settings) -> None:
    queue = JobQueue(settings, concurrency=1)
    first = queue.submit(_request(settings, "t/a:1", "sleep 0.5"))
    second = queue.submit(_request(settings, "t/b:1"))
    assert queue.cancel(second.id)
    assert queue.wait(timeout=30)
    assert queue.get(second.id).state is JobState.CANCELLED
    assert queue.get(first.id).state is JobState.DONE and kind.runs == 1
    assert not queue.cancel(first.id)  # already finished


def test_cancel_kills_the_whole_process_group_and_removes_the_temp(
    kind, settings, tmp_path
) -> None:
    pids = tmp_path / "pids"
    script = f'echo $$ > {pids}; sleep 60 & echo $! >> {pids}; echo partial > "$TEMP"; wait'
    queue = JobQueue(settings)
    job = queue.submit(_request(settings, script=script))
    deadline = time.monotonic() + 10
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    queue.cancel(job.id)
    assert queue.wait(timeout=15)
    assert queue.get(job.id).state is JobState.CANCELLED
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid)
    assert _listing(settings) == []


def test_a_failing_tool_leaves_nothing_behind(kind, settings) -> None:
    queue = JobQueue(settings)
    job = queue.submit(_request(settings, script='echo partial > "$TEMP"; echo oops >&2; exit 3'))
    assert queue.wait(timeout=30)
    final = queue.get(job.id)
    assert final.state is JobState.FAILED
    assert final.message == "sh exited with status 3: oops"
    assert _listing(settings) == []
    assert not os.listdir(os.environ["IMGCACHE_TMPDIR"])


def test_bad_refs_and_escapes_fail_before_the_kind_runs(kind, settings) -> None:
    queue = JobQueue(settings)
    bad = queue.submit(_request(settings, "a//b"))
    wrong_cache = queue.submit(
        JobRequest(ScriptKind.name, "a/b:1", CacheSpec(CacheKind.PODMAN, "/nonexistent"))
    )
    assert queue.wait(timeout=30)
    assert "empty" in queue.get(bad.id).message
    assert queue.get(wrong_cache.id).message == (
        "test-script fills enroot caches; podman:/nonexistent is not one"
    )
    assert kind.runs == 0


def test_a_full_disk_names_the_filesystem(kind, settings) -> None:
    queue = JobQueue(settings)
    job = queue.submit(_request(settings, script="enospc"))
    assert queue.wait(timeout=30)
    assert queue.get(job.id).message.startswith("no space left on ")


def test_progress_updates_are_throttled(kind, settings) -> None:
    seen, on_update = _collect()
    queue = JobQueue(settings, on_update=on_update)
    job = queue.submit(_request(settings, script="progress"))
    assert queue.wait(timeout=30)
    steps = [s for s in seen if s.id == job.id and s.phase.startswith("step")]
    assert 0 < len(steps) < 200
    assert all(0 <= s.fraction <= 1 for s in steps)


def test_passwords_never_reach_the_log(kind, settings) -> None:
    creds = Credentials("alice", "s3cret-pw")
    assert "s3cret-pw" not in repr(creds)
    queue = JobQueue(settings)
    job = queue.submit(_request(settings, script="echo hi", credentials=creds))
    assert queue.wait(timeout=30)
    log = queue.log_text(job.id)
    assert "alice" in log and "s3cret-pw" not in log


def test_unknown_kinds_are_refused_at_submit(settings) -> None:
    with pytest.raises(ValueError, match="unknown job kind 'nope'"):
        JobQueue(settings).submit(JobRequest("nope", "a:1", settings.caches[0]))


def test_old_logs_are_pruned(kind, settings) -> None:
    from imgcache.backends.jobs import queue as jobs

    directory = Path(jobs.log_dir())
    directory.mkdir(parents=True)
    for i in range(jobs.KEEP_LOGS + 5):
        path = directory / f"old-{i}.log"
        path.write_text("x")
        os.utime(path, (i, i))
    JobQueue(settings)
    names = {p.name for p in directory.iterdir()}
    assert len(names) == jobs.KEEP_LOGS and "old-0.log" not in names


def test_the_one_key_asks_for_each_missing_or_broken_default() -> None:
    from imgcache.backends.inventory.defaults import DefaultImage, Presence
    from imgcache.backends.jobs.queue import missing_default_requests

    cuda = DefaultImage("cuda", "det/env:cuda", "profile", refs.parse("det/env:cuda"), None)
    cpu = DefaultImage("cpu", "det/env:cpu", "profile", refs.parse("det/env:cpu"), None)
    file_default = DefaultImage("rocm", "/x.tar", "config", None, "/x.tar")
    presences = [
        Presence(cuda, CacheKind.SINGULARITY, "/sif", "missing", "/sif/det/env:cuda"),
        Presence(cuda, CacheKind.ENROOT, "/enr", "broken", "/enr/det+env+cuda.sqsh"),
        Presence(cpu, CacheKind.PODMAN, "/pod", "present", "/pod/x.tar"),
        Presence(file_default, CacheKind.PODMAN, "/pod", "missing", "/x.tar"),
    ]
    requests = missing_default_requests(presences)
    assert [(r.kind, r.ref, r.cache.path, r.replace, r.label) for r in requests] == [
        ("pull", "det/env:cuda", "/sif", False, "cuda default"),
        ("import", "det/env:cuda", "/enr", True, "cuda default"),
    ]
