"""The maintenance UI's pure parts, without a terminal or files: marks, the checks
compress makes before asking, how plans lay out, and what a finished job rescans."""

from __future__ import annotations

import dataclasses

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory.model import CacheKind, Format, ProbeResult, SquashInfo
from imgcache.backends.jobs.kinds.actions import CompressPayload, DeletePayload, PermsPayload
from imgcache.backends.jobs.states import JobRequest
from imgcache.backends.maintenance import PlanItem
from imgcache.backends.maintenance.perms import PermChange, PermPlan
from imgcache.backends.maintenance.squashopts import from_mksquashfs
from imgcache.tui.maintenance_control import job_label, touched_dirs
from imgcache.tui.screens.compress_dialog import check_images
from imgcache.tui.widgets.marks import Marks, table_title
from imgcache.tui.widgets.plan_view import file_table
from imgcache.tui.widgets.rows import RowModel
from tests.app.helpers import rendered
from tests.app.test_rows import ROOT, image

OPTIONS = from_mksquashfs(("-comp", "zstd", "-Xcompression-level", "3", "-b", "1M"))


def squash(comp: str, data_compressed: bool = True) -> ProbeResult:
    info = SquashInfo(
        compression=comp, compression_id=6, block_size=1 << 20, flags=0, inodes=10,
        bytes_used=4096, mkfs_time=0, version=(4, 0), inodes_compressed=True,
        data_compressed=data_compressed, fragments_compressed=True, no_fragments=False,
        xattrs_compressed=True, ids_compressed=True, compressor_options=False,
    )  # fmt: skip
    return ProbeResult(Format.SQUASHFS, squashfs=info)


def test_marks_are_paths_and_outlive_row_changes():
    model = RowModel({ROOT: "enroot"})
    a, b, c = image("a", size=1024), image("b", size=2048), image("c")
    model.load([a, b, c])
    marks = Marks()
    assert marks.toggle(b.path) and marks.toggle(a.path)
    assert [i.path for i in marks.ordered(model)] == [a.path, b.path]
    model.set_sort("size")  # biggest first
    assert [i.path for i in marks.ordered(model)] == [b.path, a.path]
    assert table_title(model, marks).endswith("by size ▼ · 2 marked · 3.0 KiB")
    model.update([dataclasses.replace(a, stat=dataclasses.replace(a.stat, size=4096)), c])
    marks.prune(model.rows)  # b is gone; a's mark stays on its new row, at its new size
    assert set(marks) == {a.path} and marks.total(model.rows) == 4096
    marks.flip_all([a.path, c.path])
    assert set(marks) == {a.path, c.path}
    marks.flip_all([a.path, c.path])  # all were marked: unmarked
    assert not marks and not marks.clear()


def test_compress_refuses_before_asking_what_the_job_would_refuse():
    lzo = dataclasses.replace(image("lzo"), probe=squash("lzo"))
    raw = dataclasses.replace(image("raw"), probe=squash("zstd", data_compressed=False))
    done = dataclasses.replace(image("done"), probe=squash("zstd"))
    tar = dataclasses.replace(image("tar"), probe=ProbeResult(Format.OCI_ARCHIVE))
    check = check_images([lzo, raw, done, tar], OPTIONS, force=False, euid=0)
    assert check.ready == (lzo, raw) and not check.signed
    why = dict((i.path, reason) for i, reason in check.refused)
    assert why[done.path].startswith("already zstd with compressed data")
    assert "only squashfs images and SIF files" in why[tar.path]
    assert check_images([done], OPTIONS, force=True, euid=0).ready == (done,)
    theirs = check_images([lzo], OPTIONS, force=False, euid=4242)  # files are uid 0's
    assert theirs.refused[0][1] == "owned by root; only they or root can replace it"


def test_file_table_keeps_paths_whole_and_moves_long_reasons_under_them():
    rows = [(2048, "enroot", "nvidia+pytorch+25.09-py3.sqsh", "stale: not read for 9 months")]
    wide = rendered(file_table(rows), width=100).splitlines()
    assert wide[1].split() == ["2.0", "KiB", "enroot", "nvidia+pytorch+25.09-py3.sqsh",
                               "stale:", "not", "read", "for", "9", "months"]  # fmt: skip
    narrow = rendered(file_table(rows), width=60).splitlines()
    assert "FILE / WHY" in narrow[0]
    assert narrow[1].split()[-1] == "nvidia+pytorch+25.09-py3.sqsh"
    assert narrow[2].strip() == "stale: not read for 9 months"


def test_finished_actions_rescan_the_directories_they_touched():
    spec = CacheSpec(CacheKind.ENROOT, ROOT)
    item = PlanItem(f"{ROOT}/org/a.sqsh", 1, "x", ROOT)
    assert touched_dirs(JobRequest("delete", "", spec, payload=DeletePayload((item,)))) == {
        f"{ROOT}/org"
    }
    compress = CompressPayload(f"{ROOT}/b.sqsh")
    assert touched_dirs(JobRequest("compress", "", spec, payload=compress)) == {ROOT}
    changes = (
        PermChange(f"{ROOT}/org", ROOT, True, 0o700, 0o755, (1, 2)),
        PermChange(f"{ROOT}/org/a.sqsh", ROOT, False, 0o600, 0o644, (1, 3, 1, 1)),
    )
    perms = PermsPayload(PermPlan(changes, (), 0o444, 0o555))
    assert touched_dirs(JobRequest("fix-perms", "", spec, payload=perms)) == {f"{ROOT}/org"}
    assert touched_dirs(JobRequest("pull", "ubuntu:22.04", spec)) == set()


def test_job_labels_name_one_file_or_count_them():
    assert job_label([f"{ROOT}/org/a.sqsh"], [ROOT], 10) == "org/a.sqsh"
    paths = [f"{ROOT}/a.sqsh", "/c/sif/b"]
    assert job_label(paths, [ROOT, "/c/sif"], 3 * 1024**3) == "2 files in 2 caches, 3.0 GiB"
