"""A job that waits for another's lock says whom it waits for: in its bar and in its log.

Another process (a real one) holds the lock on an image's path, as another admin's
pull would; a real `add` of a squashfs made by mksquashfs into that path waits for
it, and its progress phase and its log name the holder's pid and host.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory import caches, refs
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs.publish import host_name
from imgcache.backends.jobs.queue import JobQueue
from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
from tests.builders import make_squashfs
from tests.faults.conftest import need
from tests.faults.helpers import wait_for

pytestmark = pytest.mark.tools

HOLDER = """
import sys
from imgcache.backends.jobs.locks import RefLock
lock = RefLock(sys.argv[1], sys.argv[2], what=sys.argv[3])
lock.acquire(5)
print("held", flush=True)
sys.stdin.readline()
lock.release()
"""


def test_a_waiting_job_names_the_holder_in_its_phase_and_log(tmp_path) -> None:
    need("mksquashfs")
    image = make_squashfs(tmp_path / "src" / "img.sqsh", comp="gzip")
    root = tmp_path / "enroot"
    root.mkdir()
    ref = "docker.io/library/x:1"
    rel = caches.target_relpath(CacheKind.ENROOT, refs.parse(ref))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), rel, ref],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    phases: list[str] = []
    seen = threading.Lock()

    def update(status: JobStatus) -> None:
        with seen:
            phases.append(status.phase)

    queue = JobQueue(Settings(caches=()), on_update=update)
    try:
        assert holder.stdout.readline().strip() == "held"
        cache = CacheSpec(CacheKind.ENROOT, str(root))
        job = queue.submit(JobRequest("add", ref, cache, source=str(image)))
        waiting = f"waiting for pid {holder.pid} on host {host_name()}"
        wait_for(lambda: any(p.startswith(waiting) for p in list(phases)), 20, "the phase")
        assert queue.get(job.id).state is JobState.RUNNING
    finally:
        holder.communicate("\n", timeout=10)
    assert queue.wait(timeout=30)
    status = queue.get(job.id)
    queue.shutdown()
    assert status.state is JobState.DONE, status.message
    with open(status.log_path, encoding="utf-8") as f:
        log = f.read()
    assert f"# {waiting} (it is pulling {ref})" in log
