"""The jobs pane's pieces without a terminal: lines, bars, order, merging, message folding."""

from __future__ import annotations

from dataclasses import replace

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
from imgcache.tui.job_control import merge_requests
from imgcache.tui.messages import JobsUpdated
from imgcache.tui.widgets.columns import elide_name
from imgcache.tui.widgets.job_lines import bar, duration, first_line, second_line, sort_key

CACHE = CacheSpec(CacheKind.SINGULARITY, "/shared/sif")
ENROOT = CacheSpec(CacheKind.ENROOT, "/shared/enroot")
NAMES = {CACHE.path: "sif", ENROOT.path: "enroot"}
REF = "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730"


def status(job_id: int = 1, state: JobState = JobState.RUNNING, **changes) -> JobStatus:
    base = JobStatus(
        id=job_id,
        token=f"host-1-{job_id}",
        request=JobRequest("pull", REF, CACHE, label="cuda default"),
        state=state,
        phase="fetching 3/12 layers",
        fraction=0.45,
        backend="builtin (skopeo, umoci, mksquashfs, siftool)",
        created=1000.0 + job_id,
        started=1000.0 + job_id,
    )
    return replace(base, **changes)


def test_bar_fills_to_the_fraction_in_half_cells():
    assert bar(status(fraction=0.5), 10).plain == "━" * 10
    assert len(bar(status(fraction=0.5), 10).spans) == 2  # done and left in two colours
    assert bar(status(fraction=0.55), 10).plain == "━" * 5 + "╸" + "━" * 4
    assert bar(status(state=JobState.DONE, fraction=0.2), 8).cell_len == 8


def test_a_bar_without_fraction_pulses():
    running = status(fraction=None)
    frames = {str(bar(running, 20, pulse).spans) for pulse in range(10)}
    assert len(frames) > 5  # the lit segment moves
    assert all(bar(running, 20, p).cell_len == 20 for p in range(50))
    # A queued job without a fraction shows an empty bar, not a pulse.
    queued = bar(status(state=JobState.QUEUED, fraction=None), 20, 3)
    assert queued.plain == "━" * 20 and not queued.spans and queued.style == "bright_black"


def test_lines_fit_any_width_and_keep_repository_and_tag():
    for width in (40, 80, 120, 200):
        first = first_line(status(), width, now=1042.0, names=NAMES)
        second = second_line(status(), width)
        assert first.cell_len == width and second.cell_len == width
    wide = first_line(status(), 120, now=1042.0, names=NAMES).plain
    assert "● running" in wide and "pull" in wide and "→ sif" in wide
    assert wide.rstrip().endswith("0:41")
    narrow = first_line(status(), 80, now=1042.0, names=NAMES).plain
    assert "…/environments:" in narrow and "096d730" in narrow
    text = second_line(status(), 100).plain
    assert " 45%  fetching 3/12 layers · builtin" in text


def test_finished_jobs_show_their_result():
    failed = status(
        state=JobState.FAILED, message="skopeo: manifest unknown", finished=1010.0, fraction=0.1
    )
    assert "✘ failed" in first_line(failed, 100, 5000.0, NAMES).plain
    assert "0:09" in first_line(failed, 100, 5000.0, NAMES).plain  # finished - started
    assert "skopeo: manifest unknown" in second_line(failed, 100).plain
    done = status(state=JobState.DONE, message="done", finished=1003.0, fraction=0.99)
    assert "100%  done" in second_line(done, 100).plain


def test_running_first_then_queued_then_newest_finished():
    jobs = [
        status(1, JobState.DONE, finished=2000.0),
        status(2, JobState.QUEUED),
        status(3, JobState.RUNNING),
        status(4, JobState.FAILED, finished=3000.0),
        status(5, JobState.RUNNING),
    ]
    assert [s.id for s in sorted(jobs, key=sort_key)] == [3, 5, 2, 4, 1]


def test_duration():
    assert [duration(s) for s in (0, 42, 725, 3723, -5)] == [
        "0:00",
        "0:42",
        "12:05",
        "1:02:03",
        "0:00",
    ]


def test_the_cpu_and_cuda_defaults_become_one_job():
    cpu = JobRequest("pull", "determinedai/pytorch-ngc:0.35.1", CACHE, label="cpu default")
    cuda = replace(cpu, label="cuda default")
    other = replace(cpu, cache=ENROOT, kind="import")
    actions = [JobRequest("delete", "", CACHE, label="a"), JobRequest("delete", "", CACHE)]
    merged = merge_requests([cpu, cuda, other, *actions])
    assert [r.label for r in merged] == ["cpu, cuda defaults", "cpu default", "a", ""]


def test_job_updates_fold_newest_first():
    older = JobsUpdated({1: status(1, phase="a"), 2: status(2, phase="b")})
    newer = JobsUpdated({1: status(1, phase="c")})
    assert older.can_replace(newer)
    assert {i: s.phase for i, s in newer.statuses.items()} == {1: "c", 2: "b"}


def test_names_lose_their_leading_components_first():
    assert elide_name(REF, 80) == REF
    assert elide_name(REF, 60) == "…/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730"
    cut = elide_name(REF, 30)
    assert len(cut) == 30 and cut.startswith("…/environm") and cut.endswith("gpu-096d730")
    assert elide_name("nvcr.io/nvidia/pytorch:25.09-py3", 20) == "…/pytorch:25.09-py3"
    assert elide_name("nvcr.io/nvidia/pytorch:25.09-py3", 26) == "…/nvidia/pytorch:25.09-py3"
    assert len(elide_name(REF, 8)) == 8  # too narrow for "…/": the middle goes
