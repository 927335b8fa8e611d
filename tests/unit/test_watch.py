"""The cache watcher: filesystem detection, coalesced reports, fallbacks that keep watching."""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from imgcache.backends.watch import (
    CacheWatcher,
    filesystem_type,
    mount_table,
    needs_polling,
    watcher,
)

# A warning from the watcher's threads is noise on stderr (watchdog warns when
# `mkdir -p` races its recursive watch): here it fails the test.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

MOUNTS = [
    ("/", "ext4"),
    ("/shared", "nfs4"),
    ("/shared/local", "xfs"),
    ("/lustre", "lustre"),
    ("/gpfs/fs1", "gpfs"),
    ("/mnt/win", "cifs"),
]


class Recorder:
    """Collects on_dirty batches and on_status messages from the watcher's threads."""

    def __init__(self) -> None:
        self.batches: list[set[str]] = []
        self.messages: list[str] = []
        self._lock = threading.Lock()

    def dirty(self, dirs: set[str]) -> None:
        with self._lock:
            self.batches.append(set(dirs))

    def status(self, message: str) -> None:
        with self._lock:
            self.messages.append(message)

    def seen(self) -> set[str]:
        with self._lock:
            return set().union(*self.batches) if self.batches else set()


def wait_until(condition, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def watcher_factory():
    made: list[CacheWatcher] = []

    def make(roots, recorder: Recorder, **options) -> CacheWatcher:
        options.setdefault("debounce", 0.1)
        options.setdefault("supervise_interval", 0.1)
        w = CacheWatcher([str(r) for r in roots], recorder.dirty, recorder.status, **options)
        made.append(w)
        w.start()
        return w

    yield make
    for w in made:
        w.stop()


@pytest.mark.parametrize(
    ("path", "fstype", "polled"),
    [
        ("/home/admin", "ext4", False),
        ("/shared/sif", "nfs4", True),
        ("/shared/local/x", "xfs", False),
        ("/lustre/images", "lustre", True),
        ("/gpfs/fs1/cache", "gpfs", True),
        ("/mnt/win/images", "cifs", True),
    ],
)
def test_filesystem_type_picks_the_deepest_mount(path, fstype, polled):
    assert filesystem_type(path, MOUNTS) == fstype
    assert needs_polling(fstype) is polled


def test_mount_table_reads_mountinfo_with_escapes(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "40 22 0:50 / /shared\\040images rw - nfs4 server:/export rw,vers=4.2\n"
        "garbage line\n"
    )
    assert mount_table(str(info)) == [("/", "ext4"), ("/shared images", "nfs4")]
    assert mount_table(str(tmp_path / "missing")) == []
    assert needs_polling("nfs") and needs_polling("nfs3") and not needs_polling(None)


def test_inotify_reports_created_replaced_deleted_files_quickly(tmp_path, watcher_factory):
    rec = Recorder()
    w = watcher_factory([tmp_path], rec)
    assert w.modes[str(tmp_path)].method == "inotify"
    sub = tmp_path / "org"
    sub.mkdir()
    wait_until(lambda: str(sub) in rec.seen() or str(tmp_path) in rec.seen())
    rec.batches.clear()
    (sub / "a.sqsh").write_bytes(b"x")
    assert wait_until(lambda: str(sub) in rec.seen()) < 2.0
    rec.batches.clear()
    (sub / ".a.tmp").write_bytes(b"y")
    os.replace(sub / ".a.tmp", sub / "a.sqsh")
    assert wait_until(lambda: str(sub) in rec.seen()) < 2.0
    rec.batches.clear()
    (sub / "a.sqsh").unlink()
    assert wait_until(lambda: str(sub) in rec.seen()) < 2.0


def test_a_burst_of_changes_is_one_report(tmp_path, watcher_factory):
    rec = Recorder()
    watcher_factory([tmp_path], rec, debounce=0.3)
    for i in range(50):
        (tmp_path / f"f{i}").write_bytes(b"x")
    wait_until(lambda: rec.batches)
    time.sleep(0.6)
    assert len(rec.batches) <= 2
    assert str(tmp_path) in rec.seen()


def test_reading_a_file_is_not_a_change(tmp_path, watcher_factory):
    (tmp_path / "image.sif").write_bytes(b"SIF" * 100)
    rec = Recorder()
    watcher_factory([tmp_path], rec)
    with open(tmp_path / "image.sif", "rb") as f:
        f.read()  # the scanner reads headers; that must not trigger a rescan
    time.sleep(0.4)
    assert rec.batches == []


def test_reads_never_reach_the_watchers_threads(tmp_path, watcher_factory, monkeypatch):
    # A scan opens every image; the kernel must not even queue those opens, or
    # decoding them competes with the scan for the interpreter.
    (tmp_path / "image.sif").write_bytes(b"SIF" * 100)
    seen: list[object] = []
    real = watcher._Handler.dispatch
    monkeypatch.setattr(
        watcher._Handler, "dispatch", lambda self, event: (seen.append(event), real(self, event))
    )
    rec = Recorder()
    watcher_factory([tmp_path], rec)
    for _ in range(200):
        with open(tmp_path / "image.sif", "rb") as f:
            f.read(64)
    time.sleep(0.4)
    assert seen == [] and rec.batches == []
    # What does change a listing still arrives: a mode change of a file and of a directory.
    sub = tmp_path / "team"
    sub.mkdir()
    wait_until(lambda: str(tmp_path) in rec.seen())
    rec.batches.clear()
    (tmp_path / "image.sif").chmod(0o600)
    assert wait_until(lambda: str(tmp_path) in rec.seen()) < 2.0
    rec.batches.clear()
    sub.chmod(0o700)
    assert wait_until(lambda: str(sub) in rec.seen()) < 2.0


def test_forced_polling_sees_changes(tmp_path, watcher_factory):
    rec = Recorder()
    w = watcher_factory([tmp_path], rec, force_polling=True, poll_interval=0.2)
    assert w.modes[str(tmp_path)].method == "polling"
    assert "forced" in w.modes[str(tmp_path)].reason
    (tmp_path / "new.sqsh").write_bytes(b"x")
    assert wait_until(lambda: str(tmp_path) in rec.seen()) < 2.0


def test_watch_limit_falls_back_to_polling_and_says_so(tmp_path, watcher_factory, monkeypatch):
    class FullInotify(watcher.Observer):
        def schedule(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher, "Observer", FullInotify)
    rec = Recorder()
    w = watcher_factory([tmp_path], rec, poll_interval=0.2)
    mode = w.modes[str(tmp_path)]
    assert (mode.method, mode.reason) == ("polling", "inotify watch limit reached")
    assert rec.messages == [f"{tmp_path}: inotify watch limit reached; polling every 0.2s"]
    (tmp_path / "new.sqsh").write_bytes(b"x")
    assert wait_until(lambda: str(tmp_path) in rec.seen()) < 2.0


def test_a_dead_inotify_emitter_is_replaced_by_polling(tmp_path, watcher_factory):
    rec = Recorder()
    w = watcher_factory([tmp_path], rec, poll_interval=0.2)
    observer, _handle = w._handles[str(tmp_path)]
    for emitter in list(observer.emitters):
        emitter.stop()  # what an inotify failure inside the emitter thread looks like
    wait_until(lambda: w.modes[str(tmp_path)].method == "polling")
    assert any("watcher stopped" in m for m in rec.messages)
    (tmp_path / "after.sqsh").write_bytes(b"x")
    assert wait_until(lambda: str(tmp_path) in rec.seen()) < 2.0


def test_a_vanished_root_waits_and_comes_back(tmp_path, watcher_factory):
    root = tmp_path / "cache"
    root.mkdir()
    rec = Recorder()
    w = watcher_factory([root], rec)
    shutil.rmtree(root)
    wait_until(lambda: w.modes[str(root)].method == "waiting")
    assert any("disappeared" in m for m in rec.messages)
    root.mkdir()
    wait_until(lambda: w.modes[str(root)].method == "inotify")
    assert any("is back" in m for m in rec.messages)
    rec.batches.clear()
    (root / "new.sqsh").write_bytes(b"x")
    assert wait_until(lambda: str(root) in rec.seen()) < 2.0


def test_a_failing_callback_does_not_stop_the_watcher(tmp_path, watcher_factory):
    calls: list[set[str]] = []

    class Flaky(Recorder):
        def dirty(self, dirs):
            calls.append(dirs)
            if len(calls) == 1:
                raise RuntimeError("boom")

    rec = Flaky()
    watcher_factory([tmp_path], rec)
    (tmp_path / "one").write_bytes(b"x")
    wait_until(lambda: len(calls) >= 1)
    time.sleep(0.2)
    (tmp_path / "two").write_bytes(b"x")
    wait_until(lambda: len(calls) >= 2)


def test_stop_is_quick(tmp_path):
    rec = Recorder()
    w = CacheWatcher([str(tmp_path)], rec.dirty, rec.status)
    w.start()
    start = time.monotonic()
    w.stop()
    assert time.monotonic() - start < 1.5
    assert not any(t.is_alive() for t in w._threads)


def test_paths_outside_are_reported_as_their_directory(tmp_path: Path, watcher_factory):
    rec = Recorder()
    watcher_factory([tmp_path], rec)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    wait_until(lambda: rec.batches)
    rec.batches.clear()
    (deep / "x.sif").write_bytes(b"x")
    wait_until(lambda: str(deep) in rec.seen())
    assert all(os.path.isabs(d) for d in rec.seen())


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_changes_in_the_trash_and_lock_directories_are_not_reported(
    tmp_path: Path, watcher_factory, polling
):
    # A delete moves an image into ROOT/.imgcache-trash/<batch>/..., a pull holds
    # a lock file in ROOT/.imgcache-locks/: neither directory must be rescanned.
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "a.sif").write_bytes(b"x")
    rec = Recorder()
    watcher_factory([tmp_path], rec, force_polling=polling, poll_interval=0.2)
    batch = tmp_path / ".imgcache-trash" / "20260101T000000Z-1" / "org"
    batch.mkdir(parents=True)
    os.rename(tmp_path / "org" / "a.sif", batch / "a.sif")
    locks = tmp_path / ".imgcache-locks"
    locks.mkdir()
    (locks / "x.lock").write_bytes(b"pid=1")
    (batch / "a.sif").write_bytes(b"changed in the trash")
    # The rename out of org/ is reported; a marker file shows the reports are through.
    wait_until(lambda: str(tmp_path / "org") in rec.seen())
    (tmp_path / "marker").write_bytes(b"m")
    wait_until(lambda: str(tmp_path) in rec.seen())
    time.sleep(0.5 if polling else 0.3)
    reported = rec.seen()
    assert not [d for d in reported if ".imgcache-" in d], reported
