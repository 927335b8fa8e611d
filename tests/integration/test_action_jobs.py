"""Compress, delete, gc and fix-perms run on the job queue, as the app runs them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from imgcache.backends.config import Settings, parse_cache_arg
from imgcache.backends.inventory.catalog import Catalog
from imgcache.backends.inventory.probe import probe_path
from imgcache.backends.jobs.kinds.actions import (
    CompressPayload,
    DeletePayload,
    GcPayload,
    PermsPayload,
)
from imgcache.backends.jobs.queue import JobQueue
from imgcache.backends.jobs.states import JobRequest, JobState
from imgcache.backends.maintenance import PlanItem, gc, perms
from tests.builders import have, make_rootfs, make_squashfs

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        not have("mksquashfs", "sqfs2tar", "tar2sqfs", "unsquashfs"),
        reason="needs squashfs-tools and squashfs-tools-ng",
    ),
]


@pytest.fixture
def jobs_env():
    """No registry needed here (the integration conftest's autouse fixture asks for one)."""


@pytest.fixture
def cache(tmp_path) -> tuple[Settings, Path]:
    root = tmp_path / "enroot"
    root.mkdir()
    rootfs = make_rootfs(tmp_path / "rootfs")
    make_squashfs(
        root / "nvidia+pytorch+25.09-py3.sqsh", comp="lzo", options=["-noD"], rootfs=rootfs
    )
    shutil.copy(root / "nvidia+pytorch+25.09-py3.sqsh", root / "ubuntu+22.04.sqsh")
    settings = Settings(caches=(parse_cache_arg(f"enroot:{root}"),))
    return settings, root


def run(settings: Settings, request: JobRequest, tmp_path: Path):
    updates = []
    queue = JobQueue(settings, on_update=updates.append, logs=str(tmp_path / "logs"))
    try:
        status = queue.submit(request)
        assert queue.wait(timeout=120)
        final = queue.get(status.id)
        return final, updates, queue.log_text(status.id)
    finally:
        queue.shutdown()


def test_compress_job_reports_progress_and_sizes(cache, tmp_path):
    settings, root = cache
    path = root / "nvidia+pytorch+25.09-py3.sqsh"
    before = os.path.getsize(path)
    image = next(i for i in Catalog(settings).scan().images if i.path == str(path))
    request = JobRequest(
        "compress",
        "",
        settings.caches[0],
        label=str(path),
        payload=CompressPayload(str(path), expected=image.stat),
    )
    final, updates, log = run(settings, request, tmp_path)
    assert final.state is JobState.DONE, final.message
    assert final.title == f"compress {path}"
    assert "->" in final.message
    assert any(u.state is JobState.RUNNING and u.phase for u in updates)
    result = probe_path(str(path))
    assert (result.compression, result.data_compressed) == ("zstd", True)
    assert os.path.getsize(path) < before
    assert "sqfs2tar" in log and "tar2sqfs" in log


def test_compress_job_refuses_a_changed_file(cache, tmp_path):
    settings, root = cache
    path = root / "ubuntu+22.04.sqsh"
    image = next(i for i in Catalog(settings).scan().images if i.path == str(path))
    with path.open("ab") as f:
        f.write(b"\0" * 4096)  # another admin touched it after the scan
    request = JobRequest(
        "compress",
        "",
        settings.caches[0],
        label=str(path),
        payload=CompressPayload(str(path), expected=image.stat),
    )
    final, _, _ = run(settings, request, tmp_path)
    assert final.state is JobState.FAILED
    assert "changed since" in final.message


def test_delete_job_moves_to_the_trash(cache, tmp_path):
    settings, root = cache
    inventory = Catalog(settings).scan()
    image = next(i for i in inventory.images if i.path.endswith("ubuntu+22.04.sqsh"))
    item = PlanItem(image.path, image.stat.size, "chosen", image.root, image.stat)
    request = JobRequest(
        "delete", "", settings.caches[0], label="1 file", payload=DeletePayload((item,))
    )
    final, _, _ = run(settings, request, tmp_path)
    assert final.state is JobState.DONE, final.message
    assert final.message.startswith("1 file moved to the trash")
    assert not os.path.exists(image.path)
    trashed = list((root / ".imgcache-trash").rglob("ubuntu+22.04.sqsh"))
    assert len(trashed) == 1


def test_gc_job_removes_what_the_plan_listed(cache, tmp_path):
    settings, root = cache
    (root / ".imgcache-x.old-host-1-1.tmp").write_bytes(b"partial")
    old = 1_000_000_000
    os.utime(root / ".imgcache-x.old-host-1-1.tmp", (old, old))
    inventory = Catalog(settings).scan()
    plan = gc.plan(inventory, codes={"incomplete"})
    assert plan.paths == [str(root / ".imgcache-x.old-host-1-1.tmp")]
    request = JobRequest("gc", "", settings.caches[0], label="gc", payload=GcPayload(plan))
    final, _, _ = run(settings, request, tmp_path)
    assert final.state is JobState.DONE, final.message
    assert not (root / ".imgcache-x.old-host-1-1.tmp").exists()
    assert (root / "ubuntu+22.04.sqsh").exists()


def test_fix_perms_job(cache, tmp_path):
    settings, root = cache
    os.chmod(root / "ubuntu+22.04.sqsh", 0o600)
    plan = perms.plan_permissions(Catalog(settings).scan())
    request = JobRequest(
        "fix-perms", "", settings.caches[0], label="permissions", payload=PermsPayload(plan)
    )
    final, _, _ = run(settings, request, tmp_path)
    assert final.state is JobState.DONE, final.message
    assert final.message == "1 permission change"
    assert os.stat(root / "ubuntu+22.04.sqsh").st_mode & 0o777 == 0o644


def test_an_action_without_its_payload_fails_clearly(cache, tmp_path):
    settings, _ = cache
    final, _, _ = run(settings, JobRequest("delete", "", settings.caches[0]), tmp_path)
    assert final.state is JobState.FAILED
    assert final.message == "delete needs a DeletePayload, not NoneType"
