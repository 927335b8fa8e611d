"""Work a job runs beside its main line, and scratch trees removed while it goes on.

The builtin pull asks the registry (`skopeo inspect`) while `skopeo copy` runs,
writes the SIF's metadata while mksquashfs runs, and removes the OCI layout and
the unpacked tree while the next steps run. These tests hold the pieces to what
an admin reading the job log, or cancelling the job, would expect. The programs
are real (`sh`, and skopeo against a port nothing listens on).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory import refs
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs import pipeline
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.kinds.base import describe_failure
from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
from imgcache.backends.tools import skopeo
from imgcache.backends.tools.run import Cancelled, CancelToken, ToolError
from tests.builders import have


@pytest.fixture
def ctx(tmp_path, monkeypatch) -> JobContext:
    monkeypatch.setenv("IMGCACHE_TMPDIR", str(tmp_path / "work"))
    (tmp_path / "work").mkdir()
    request = JobRequest("pull", "img:1", CacheSpec(CacheKind.SINGULARITY, str(tmp_path)))
    status = JobStatus(1, "h-1-1", request, JobState.RUNNING, "", None)
    return JobContext(status, Settings(), CancelToken(), lambda **_: None, io.StringIO())


def test_work_beside_runs_at_the_same_time_and_its_log_stays_in_one_piece(ctx, tmp_path) -> None:
    flag = tmp_path / "main-started"
    # The work beside waits (up to 10 s) for a file the main line creates: it
    # only succeeds if the two really run at the same time.
    waiter = (
        f"i=0; while [ ! -e {flag} ]; do i=$((i+1)); [ $i -gt 1000 ] && exit 3; sleep 0.01; done;"
        " echo side one; echo side two"
    )
    side = ctx.beside(lambda runner: runner(["sh", "-c", waiter]).returncode, "test")
    ctx.run(["sh", "-c", f"echo main one; touch {flag}; sleep 0.2; echo main two"])
    assert side.result() == 0
    log = ctx.log.getvalue().splitlines()  # type: ignore[attr-defined]
    main_at = log.index("main one")
    side_at = log.index("side one")
    # The main command's lines come together, then the whole block of the work beside.
    assert log[main_at + 1] == "main two"
    assert side_at > main_at
    assert log[side_at - 2] == "# test, run beside the step above:"
    assert log[side_at - 1].startswith("$ sh -c") and log[side_at + 1] == "side two"
    assert log[side_at + 2] == "[exit 0]"


def test_a_failure_beside_is_raised_where_the_result_is_taken_and_names_its_disk(
    ctx, tmp_path
) -> None:
    full = str(tmp_path / "cache" / "image.sif")
    fail = "echo 'write: no space left on device' >&2; exit 1"
    side = ctx.beside(lambda runner: runner(["sh", "-c", fail], writes_to=full), "test")
    ctx.run(["true"], writes_to=str(tmp_path / "work" / "scratch"))
    with pytest.raises(ToolError) as caught:
        side.result()
    # The message must send the admin to the filesystem the work beside filled,
    # not to the one the main line happened to be writing.
    assert ctx.writing_to == full
    assert describe_failure(caught.value, ctx).startswith("no space left on ")
    assert "no space left on device" in ctx.log.getvalue()  # type: ignore[attr-defined]


def test_cancel_stops_the_work_beside_too(ctx) -> None:
    side = ctx.beside(lambda runner: runner(["sleep", "30"]), "test")
    time.sleep(0.2)
    started = time.monotonic()
    ctx.cancel.cancel()
    with pytest.raises(Cancelled):
        side.result()
    assert time.monotonic() - started < 5


def test_discarded_trees_are_gone_once_the_job_closes(ctx) -> None:
    work = Path(ctx.workdir())
    for sub in ("layout", "rootfs"):
        for i in range(50):
            (work / sub / f"d{i % 5}").mkdir(parents=True, exist_ok=True)
            (work / sub / f"d{i % 5}" / f"f{i}").write_bytes(b"x" * 4096)
    ctx.discard(str(work / "layout"))
    ctx.release_workdir()
    # A job that needs scratch space again gets a fresh, empty directory.
    again = ctx.workdir()
    assert not work.exists() and os.listdir(again) == []
    assert os.path.basename(again).startswith(f"imgcache-work-{ctx.token}.")
    ctx.discard(again)
    ctx.close()
    assert not os.path.exists(again)


def test_the_layer_count_may_arrive_after_the_copy_started() -> None:
    seen: list[tuple[int, int | None]] = []
    counter = skopeo.BlobCounter(None, lambda done, total: seen.append((done, total)))
    counter("Copying blob sha256:aaa")
    counter.total = 2  # the inspect beside the copy has answered
    counter("Copying blob sha256:bbb")
    counter("Copying config sha256:ccc")
    assert seen == [(1, None), (2, 2)]


@pytest.mark.skipif(not have("skopeo"), reason="needs skopeo")
def test_when_copy_and_inspect_both_fail_the_copy_is_reported(ctx, tmp_path) -> None:
    # Nothing listens on port 1: inspect and copy both fail. The admin must see
    # the copy's error, and the job log must hold both commands.
    ctx.ref = refs.parse("127.0.0.1:1/imgcache-test/none:1")
    started = time.monotonic()
    with pytest.raises(ToolError) as caught:
        pipeline.copy(
            ctx,
            f"oci:{tmp_path}/layout:image",
            None,
            0.0,
            0.4,
            writes_to=str(tmp_path / "layout"),
        )
    assert "copy" in caught.value.argv
    assert "connection refused" in describe_failure(caught.value, ctx)
    log = ctx.log.getvalue()  # type: ignore[attr-defined]
    assert " inspect " in log and " copy " in log
    assert time.monotonic() - started < 60
