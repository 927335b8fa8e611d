"""The table's data model, column painting and summary figures, without a terminal.

Images here are plain records (no files): what matters is how rows are planned,
patched, sorted and filtered, and how the figures add up.
"""

from __future__ import annotations

import dataclasses

from rich.style import Style

from imgcache.backends.inventory.model import (
    CacheKind,
    FileStat,
    Finding,
    Format,
    Image,
    ProbeResult,
)
from imgcache.tui.format import short_age
from imgcache.tui.widgets.columns import badge_segments, fit, layout
from imgcache.tui.widgets.rows import PATCH_LIMIT, RowModel, Scope, plan, repo_of
from imgcache.tui.widgets.summary import COMPRESSION_SAVING, reclaimable

ROOT = "/c/enroot"
PROBE = ProbeResult(Format.SQUASHFS)


def image(name: str, size: int = 100, mtime: float = 1000.0, codes: tuple[str, ...] = ()) -> Image:
    stat = FileStat(1, hash(name) & 0xFFFF, size, mtime, mtime, mtime, 0o100644, 0, 0)
    return Image(
        cache=CacheKind.ENROOT,
        root=ROOT,
        path=f"{ROOT}/{name}.sqsh",
        ref=f"{name}:1",
        ref_error=None,
        stat=stat,
        probe=PROBE,
        owner="root",
        group="root",
        findings=tuple(Finding(c, "because") for c in codes),
    )


def names(model: RowModel) -> list[str]:
    return [row.name for row in model.visible()]


def test_unchanged_images_keep_their_rows_and_the_view():
    images = [image(n) for n in ("b", "a", "c")]
    model = RowModel({ROOT: "enroot"})
    model.load(images)
    assert names(model) == ["a:1", "b:1", "c:1"]
    before = dict(model.rows)
    # A rescan hands new records (findings are recomputed) with the same content.
    again = [dataclasses.replace(i) for i in images]
    patch = model.apply(plan(again, model.rows, model.names))
    assert not patch.rebuilt and not patch.rows
    assert all(model.rows[p] is before[p] for p in before)
    assert model.rows[images[0].path].image is again[0]  # details see the new record


def test_one_changed_file_is_patched_in_place():
    images = [image(n) for n in ("a", "b", "c")]
    model = RowModel()
    model.load(images)
    rebuilds = model.rebuilds
    changed = image("b", size=999)
    patch = model.update([images[0], changed, images[2]])
    assert patch.rows == {changed.path} and not patch.rebuilt
    assert model.rebuilds == rebuilds
    assert model.row(1).size_text == "999 B"


def test_added_and_removed_rows_are_placed_by_binary_search():
    model = RowModel()
    model.load([image(n) for n in ("a", "c", "e")])
    rebuilds = model.rebuilds
    patch = model.update([image(n) for n in ("a", "b", "e", "f")])
    assert patch.rebuilt
    assert model.rebuilds == rebuilds  # inserted, not re-sorted
    assert names(model) == ["a:1", "b:1", "e:1", "f:1"]
    assert model.position(image("f").path) == 3


def test_many_changes_rebuild_the_view():
    model = RowModel()
    model.load([image("a")])
    model.update([image(f"n{i}") for i in range(PATCH_LIMIT + 5)])
    assert len(model) == PATCH_LIMIT + 5
    assert names(model) == sorted(names(model))


def test_sort_columns_and_reverse():
    model = RowModel()
    model.load([image("a", size=3, mtime=30), image("b", size=1, mtime=10), image("c", size=2)])
    model.set_sort("size")
    assert names(model) == ["a:1", "c:1", "b:1"] and model.descending
    model.set_sort("size", reverse=True)
    assert names(model) == ["b:1", "c:1", "a:1"] and not model.descending
    model.set_sort("age")  # oldest first
    assert names(model) == ["b:1", "a:1", "c:1"] and model.descending


def test_findings_sort_puts_the_worst_first():
    model = RowModel()
    model.load([image("a", codes=("stale",)), image("b"), image("c", codes=("corrupt", "stale"))])
    model.set_sort("findings")
    assert names(model) == ["c:1", "a:1", "b:1"]


def test_filters_combine():
    model = RowModel()
    model.load(
        [
            image("nvidia/pytorch", codes=("uncompressed",)),
            image("ubuntu", codes=("stale",)),
            image("nvidia/cuda"),
        ]
    )
    model.set_filters(text="NVIDIA")
    assert names(model) == ["nvidia/cuda:1", "nvidia/pytorch:1"]
    model.set_filters(finding="uncompressed")
    assert names(model) == ["nvidia/pytorch:1"]
    model.set_filters(text="", finding="any")
    assert names(model) == ["nvidia/pytorch:1", "ubuntu:1"]
    model.set_filters(finding="all", scope=Scope(ROOT, "nvidia/cuda"))
    assert names(model) == ["nvidia/cuda:1"]
    model.set_filters(scope=None)
    assert len(model) == 3 and not model.filtered


def test_repo_and_fit():
    assert repo_of("nvcr.io/nvidia/pytorch:25.09-py3") == "nvcr.io/nvidia/pytorch"
    assert repo_of("localhost:5000/x") == "localhost:5000/x"
    assert repo_of("a/b@sha256:abc") == "a/b"
    assert fit("abc", 5) == "abc  "
    cut = fit("determinedai/environments:cuda-11.3-gpu-096d730", 20)
    assert len(cut) == 20 and "…" in cut and cut.endswith("096d730")


def test_layout_drops_columns_on_narrow_terminals():
    wide = [c.key for c in layout(160, 17, 9)]
    assert wide == ["name", "cache", "format", "comp", "size", "age", "findings"]
    narrow = [c.key for c in layout(60, 17, 9)]
    assert "findings" in narrow and "size" in narrow and "format" not in narrow


def test_the_cache_column_stays_when_several_caches_show():
    # 80x24 with a findings column grown to its widest: findings shrink first,
    # then format and age go; the cache column stays, so rows of different caches
    # never look alike.
    for width in (78, 70, 60, 50):
        columns = {c.key: c for c in layout(width, 24, 14)}
        assert "cache" in columns, width
        assert columns["cache"].width >= 8
    at_80 = {c.key: c.width for c in layout(78, 24, 14)}
    assert at_80["findings"] < 24 and at_80["name"] >= 28 and at_80["cache"] == 14
    # One cache: no cache column, and the findings still shrink before format goes.
    single = {c.key: c.width for c in layout(78, 24, 0)}
    assert "cache" not in single and "format" in single and single["name"] >= 28


def test_badges_say_how_many_did_not_fit():
    text = "".join(s.text for s in badge_segments(("corrupt", "incomplete", "stale"), 12, Style()))
    assert text.startswith("corrupt +2")
    assert len(text) == 13  # the column and its separator


def test_reclaimable_estimate():
    assert reclaimable(image("a", size=1000, codes=("stale",))) == 1000
    assert reclaimable(image("a", size=1000, codes=("uncompressed",))) == 1000 * COMPRESSION_SAVING
    assert reclaimable(image("a", size=1000, codes=("legacy-codec", "unshared"))) == 0
    assert reclaimable(image("a", size=1000, codes=("uncompressed", "duplicate"))) == 1000
    assert reclaimable(image("a", size=1000, codes=("not-an-image",))) == 1000


def test_short_age():
    assert [short_age(s) for s in (5, 300, 7200, 3 * 86400, 70 * 86400, 800 * 86400)] == [
        "now",
        "5min",
        "2h",
        "3d",
        "2mo",
        "2y 2mo",
    ]
