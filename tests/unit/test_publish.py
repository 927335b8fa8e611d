"""Publishing into a shared directory: temp names, modes, no-replace links, stale cleanup, locks."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from imgcache.backends.inventory import caches
from imgcache.backends.jobs import leftovers, publish, safedirs
from imgcache.backends.jobs.locks import LockBusy, RefLock, held_here, lock_path


def test_temp_names_are_hidden_incomplete_and_carry_their_owner() -> None:
    token = publish.make_token(7, pid=1234, host="node-01")
    name = publish.temp_name("ubuntu:22.04", token)
    assert name == ".imgcache-ubuntu:22.04.node-01-1234-7.tmp"
    assert caches.looks_incomplete(name)
    assert publish.parse_temp(name) == publish.TempOwner("node-01", 1234, 7)
    assert publish.parse_temp("ubuntu:22.04") is None
    assert publish.parse_temp(".imgcache-trash") is None


def test_long_names_are_shortened_but_stay_distinct() -> None:
    token = publish.make_token(1, pid=99, host="h")
    a = publish.temp_name("x" * 250 + "a", token)
    b = publish.temp_name("x" * 250 + "b", token)
    assert len(a.encode()) <= 255 and a != b
    assert publish.parse_temp(a) == publish.TempOwner("h", 99, 1)


def _publication(tmp_path, final_rel="sub/dir/img:1", **modes) -> publish.Publication:
    return publish.Publication(
        str(tmp_path),
        str(tmp_path / final_rel),
        publish.make_token(1),
        file_mode=modes.get("file_mode", 0o644),
        dir_mode=modes.get("dir_mode", 0o755),
    )


def test_commit_sets_modes_and_makes_directories(tmp_path) -> None:
    os.umask(0o077)  # the admin's umask must not decide what others can read
    try:
        pub = _publication(tmp_path, file_mode=0o640, dir_mode=0o750)
        pub.prepare()
        assert os.path.exists(pub.temp) and not os.path.exists(pub.final)
        with open(pub.temp, "wb") as f:
            f.write(b"image")
        assert pub.commit() == "published"
    finally:
        os.umask(0o022)
    assert Path(pub.final).read_bytes() == b"image" and not os.path.exists(pub.temp)
    assert stat.S_IMODE(os.stat(pub.final).st_mode) == 0o640
    for d in ("sub", "sub/dir"):
        assert stat.S_IMODE(os.stat(tmp_path / d).st_mode) == 0o750


def test_commit_never_replaces_a_file_another_job_published(tmp_path) -> None:
    pub = _publication(tmp_path)
    pub.prepare()
    with open(pub.final, "wb") as f:
        f.write(b"theirs")
    assert pub.commit() == "exists"
    assert Path(pub.final).read_bytes() == b"theirs" and not os.path.exists(pub.temp)


def test_commit_with_replace_swaps_atomically(tmp_path) -> None:
    pub = _publication(tmp_path)
    pub.prepare()
    with open(pub.final, "wb") as f:
        f.write(b"old")
    reader = open(pub.final, "rb")  # noqa: SIM115 - a running job keeps reading the old file
    with open(pub.temp, "wb") as f:
        f.write(b"new")
    assert pub.commit(replace=True) == "replaced"
    assert Path(pub.final).read_bytes() == b"new" and reader.read() == b"old"
    reader.close()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_cleanup_removes_temps_of_dead_owners_only(tmp_path) -> None:
    host = publish.host_name()
    mine = tmp_path / publish.temp_name("a:1", publish.make_token(1))
    dead = tmp_path / "d" / publish.temp_name("b:1", publish.make_token(2, pid=_dead_pid()))
    foreign_new = tmp_path / publish.temp_name("c:1", "otherhost-1-1")
    foreign_old = tmp_path / publish.temp_name("e:1", "otherhost-1-2")
    unknown = tmp_path / ".imgcache-something-else"
    image = tmp_path / "f:1"
    for path in (mine, dead, foreign_new, foreign_old, unknown, image):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    old = time.time() - publish.FOREIGN_TEMP_AGE - 60
    os.utime(foreign_old, (old, old))
    assert host != "otherhost"
    removed = leftovers.cleanup_stale(str(tmp_path))
    assert sorted(removed) == sorted([str(dead), str(foreign_old)])
    assert mine.exists() and foreign_new.exists() and unknown.exists() and image.exists()


def test_a_reused_pid_is_not_the_owner(tmp_path) -> None:
    # pid 1 is alive but started long before this file was written... so it
    # could own it; a file written before pid 1 started could not be its.
    owner = publish.TempOwner(publish.host_name(), os.getpid(), 1)
    assert leftovers.owner_alive(owner, time.time())
    assert not leftovers.owner_alive(owner, 0.0)


def test_no_space_message_names_the_filesystem(tmp_path) -> None:
    text = publish.no_space_message(str(tmp_path / "x" / "y"), 5 * 1024 * 1024)
    assert text.startswith(f"no space left on {publish.mount_point(str(tmp_path))} ")
    assert "need about 5.0 MiB" in text


# --- locks -------------------------------------------------------------------------

_HOLDER = """
import sys, time
from imgcache.backends.jobs.locks import RefLock
lock = RefLock(sys.argv[1], "img:1", what="img:1")
lock.acquire(5)
print("held", flush=True)
sys.stdin.readline()
lock.release()
"""


def test_a_lock_held_by_another_process_names_it(tmp_path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = RefLock(str(tmp_path), "img:1", what="img:1")
        start = time.monotonic()
        with pytest.raises(
            LockBusy, match=rf"another imgcache is pulling img:1 \(pid {holder.pid} on host "
        ):
            lock.acquire(0.5)
        assert 0.4 < time.monotonic() - start < 3
    finally:
        holder.communicate("\n", timeout=10)
    lock = RefLock(str(tmp_path), "img:1", what="img:1")
    lock.acquire(1)  # free again once the holder let go
    assert lock.held
    lock.release()
    assert not os.path.exists(lock_path(str(tmp_path), "img:1"))


def test_jobs_of_one_process_exclude_each_other(tmp_path) -> None:
    first = RefLock(str(tmp_path), "img:1", what="img:1")
    first.acquire(1)
    assert held_here(first.path)
    with pytest.raises(LockBusy, match="another job of this imgcache"):
        RefLock(str(tmp_path), "img:1", what="img:1").acquire(0.3)
    first.release()
    assert not held_here(first.path)


def test_locks_can_be_turned_off(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IMGCACHE_NO_LOCKS", "1")
    a = RefLock(str(tmp_path), "img:1", what="img:1")
    b = RefLock(str(tmp_path), "img:1", what="img:1")
    a.acquire(1)
    b.acquire(1)
    assert not a.held and "turned off" in b.warning
    a.release()
    b.release()


def _unwritable_lock(directory: str) -> tuple[bool, str]:
    lock = RefLock(directory, "img:1", what="img:1")
    lock.acquire(1)
    try:
        return lock.held, lock.warning
    finally:
        lock.release()


def test_an_unwritable_lock_directory_means_unlocked_not_failed() -> None:
    # A world-readable directory outside pytest's private (0700) temp tree, made
    # read-only; as root the check runs in a child that became `nobody`, since
    # root writes everywhere.
    base = tempfile.mkdtemp(prefix="imgcache-lock-")
    try:
        os.chmod(base, 0o555)
        if os.geteuid() != 0:
            held, warning = _unwritable_lock(base)
        else:
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read)
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    held, warning = _unwritable_lock(base)
                    os.write(write, f"{int(held)}{warning}".encode())
                finally:
                    os._exit(0)
            os.close(write)
            with os.fdopen(read) as pipe:
                answer = pipe.read()
            os.waitpid(pid, 0)
            held, warning = answer[:1] == "1", answer[1:]
        assert not held
        assert "unlocked" in warning
    finally:
        os.chmod(base, 0o755)
        shutil.rmtree(base)


# --- links planted where imgcache writes ---------------------------------------------


def test_a_link_at_the_temps_name_is_refused_and_its_target_untouched(tmp_path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    pub = _publication(tmp_path / "cache", final_rel="img:1")
    (tmp_path / "cache").mkdir()
    os.symlink(victim, pub.temp)
    with pytest.raises(
        safedirs.UnsafePath, match="it is a symbolic link, not a file imgcache made"
    ):
        pub.prepare()
    pub.close()
    assert victim.read_text() == "precious\n" and os.path.islink(pub.temp)


def test_a_directory_swapped_for_a_link_after_the_checks_is_refused(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "cache").mkdir()
    os.symlink(outside, tmp_path / "cache" / "sub")  # after naming checked the path
    pub = _publication(tmp_path / "cache", final_rel="sub/dir/img:1")
    with pytest.raises(safedirs.UnsafePath, match=r"refusing sub in .*: it is a symbolic link"):
        pub.prepare()
    assert os.listdir(outside) == []


def test_a_temp_replaced_by_someone_elses_file_is_not_published(tmp_path) -> None:
    pub = _publication(tmp_path, final_rel="img:1")
    pub.prepare()
    os.unlink(pub.temp)
    with open(pub.temp, "wb") as f:
        f.write(b"not what the job wrote")
    if os.geteuid() == 0:
        os.chown(pub.temp, 65534, 65534)  # another admin's file
    else:
        pytest.skip("needs root to give the swapped file another owner")
    with pytest.raises(safedirs.UnsafePath, match="someone replaced the temp file"):
        pub.commit()
    pub.discard()
    pub.close()
    assert not os.path.exists(pub.final) and not os.path.exists(pub.temp)


def test_a_fifo_at_the_lock_files_name_is_refused_without_blocking(tmp_path) -> None:
    os.mkdir(tmp_path / caches.LOCK_DIR)
    os.mkfifo(lock_path(str(tmp_path), "img:1"))
    start = time.monotonic()
    with pytest.raises(safedirs.UnsafePath, match="it is a FIFO, not a file imgcache made"):
        RefLock(str(tmp_path), "img:1", what="img:1").acquire(1)
    assert time.monotonic() - start < 1
    assert not held_here(lock_path(str(tmp_path), "img:1"))


def test_a_waiting_job_says_whom_it_waits_for(tmp_path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    heard: list[str] = []
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = RefLock(str(tmp_path), "img:1", what="img:1")
        with pytest.raises(LockBusy):
            lock.acquire(0.6, on_wait=heard.append)
    finally:
        holder.communicate("\n", timeout=10)
    # Once, not once per poll: the log gets one line per holder.
    assert heard == [
        f"waiting for pid {holder.pid} on host {publish.host_name()} (it is pulling img:1)"
    ]


# --- scratch directories ----------------------------------------------------------------


def test_scratch_directories_have_an_unguessable_name_and_are_private(
    tmp_path, monkeypatch
) -> None:
    from imgcache.backends.config import Settings
    from imgcache.backends.jobs.context import JobContext
    from imgcache.backends.jobs.logs import JobLog
    from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
    from imgcache.backends.tools.run import CancelToken

    monkeypatch.setenv("IMGCACHE_TMPDIR", str(tmp_path))
    token = publish.make_token(5)
    request = JobRequest("pull", "x:1", None)  # type: ignore[arg-type]
    status = JobStatus(1, token, request, JobState.RUNNING, "", None)
    ctx = JobContext(status, Settings(caches=()), CancelToken(), lambda **_: None, JobLog(None))
    work = ctx.workdir()
    name = os.path.basename(work)
    assert name.startswith(f"{publish.WORKDIR_PREFIX}{token}.") and len(name) > len(token) + 16
    assert stat.S_IMODE(os.lstat(work).st_mode) == 0o700
    assert ctx.tool_env() == {"TMPDIR": os.path.join(work, "tmp")}
    assert leftovers.workdir_owner(name) == publish.TempOwner(publish.host_name(), os.getpid(), 5)
    assert leftovers.cleanup_workdirs(str(tmp_path)) == []  # its job is alive
    ctx.close()
    assert os.listdir(tmp_path) == []
