"""Pilot tests of browsing: the real app factory on caches made by the real tools.

Navigation, sorting, the text and finding filters, details, the defaults panel,
the help screen (with a remapped key), the command palette and the 80x24 layout.
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import Static

from imgcache.tui.keymap import keymap_problem
from imgcache.tui.screens.details import DetailsScreen
from imgcache.tui.screens.finding_picker import FindingPicker
from imgcache.tui.screens.help import HelpScreen
from imgcache.tui.widgets.cache_tree import CacheTree
from imgcache.tui.widgets.defaults_panel import DefaultsPanel
from imgcache.tui.widgets.details import DetailsPane
from imgcache.tui.widgets.summary import SummaryBar
from tests.app.helpers import DEFAULT_REF, demo_jobs, make_app, rendered, settle, table_lines

pytestmark = pytest.mark.tools


def names(app) -> list[str]:
    return [row.name for row in app.main.table.model.visible()]


async def test_opens_on_every_cache_with_tree_and_summary(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await pilot.pause()
        table = app.main.table
        assert len(table.model) == 9
        assert table.has_focus
        assert table.border_title.startswith("Images 9/9")
        lines = table_lines(app)
        assert lines[0].split()[:2] == ["IMAGE", "▲"]
        assert any("nvidia/pytorch:25.09-py3" in line and "raw" in line for line in lines)
        tree = app.main.query_one(CacheTree)
        labels = [str(node.label) for node in tree.root.children]
        assert [label.split()[0] for label in labels] == ["sif", "enroot", "podman"]
        assert "3 ·" in labels[0] and "4 ·" in labels[1] and "2 ·" in labels[2]
        summary = app.main.query_one(SummaryBar).content.plain
        assert summary.startswith("9 images")
        assert "reclaimable" in summary and "512.0 GiB free" in summary


async def test_keys_move_the_cursor_and_tab_moves_between_panes(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(150, 36)) as pilot:
        await settle(app)
        table = app.main.table
        await pilot.press("j", "j", "down")
        assert table.cursor == 3
        await pilot.press("k")
        assert table.cursor == 2
        await pilot.press("G")
        assert table.cursor == 8
        await pilot.press("g")
        assert table.cursor == 0
        await pilot.press("ctrl+d")
        assert table.cursor > 0
        await pilot.press("ctrl+u")
        assert table.cursor == 0
        await pilot.press("j")
        await pilot.pause()
        details = app.main.query_one(DetailsPane)
        assert details.image is table.highlighted
        await pilot.press("tab")
        assert app.focused is details
        await pilot.press("tab")
        assert app.focused is app.main.tree
        await pilot.press("shift+tab")
        assert app.focused is details


async def test_sort_keys_and_header_click(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        model = app.main.table.model
        assert names(app) == sorted(names(app), key=str.lower)
        await pilot.press("s", "s", "s", "s")  # name -> cache -> format -> comp -> size
        assert model.sort == "size"
        sizes = [row.image.stat.size for row in model.visible()]
        assert sizes == sorted(sizes, reverse=True)
        await pilot.press("S")
        sizes = [row.image.stat.size for row in model.visible()]
        assert sizes == sorted(sizes)
        assert "by size ▲" in app.main.table.border_title
        # A click on the AGE header sorts by age, oldest first.
        header = table_lines(app)[0]
        await pilot.click("#images", offset=(header.index(" AGE") + 3, 1))
        assert model.sort == "age"
        mtimes = [row.image.stat.mtime for row in model.visible()]
        assert mtimes == sorted(mtimes)


async def test_text_filter_narrows_and_escape_clears(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await pilot.press("slash")
        assert app.focused is app.main.filter_bar
        await pilot.press(*"ubuntu")
        await pilot.pause()
        assert names(app) == ["ubuntu:22.04", "ubuntu:22.04"]
        await pilot.press("enter")
        assert app.focused is app.main.table
        assert app.main.filter_bar.display  # still shows what filters the table
        assert "/ubuntu" in app.main.table.border_title
        await pilot.press("slash", "home", "ctrl+k", *"enroot lzo")
        await pilot.pause()
        assert len(app.main.table.model) == 1
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.main.table.model) == 9
        assert not app.main.filter_bar.display


async def test_finding_filter_picker_and_palette(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await pilot.press("f")
        assert isinstance(app.screen, FindingPicker)
        # all, any, corrupt, incomplete, not-an-image, unshared, uncompressed
        await pilot.press("j", "j", "j", "j", "j", "j", "enter")
        await pilot.pause()
        assert app.main.table.model.finding == "uncompressed"
        assert names(app) == ["nvidia/pytorch:25.09-py3"]
        assert "only uncompressed" in app.main.table.border_title
        await pilot.press("escape")
        assert app.main.table.model.finding == "all"
        # The palette offers the same filters, with counts from the current rows.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"only corrupt")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.main.table.model.finding == "corrupt"
        assert names(app) == ["broken/image:1"]


async def test_details_show_what_the_probe_read(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        app.main.table.select_path(str(real_cache.sif / DEFAULT_REF))
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        pane = app.screen.query_one(DetailsPane)
        text = rendered(pane.renderable)
        assert str(real_cache.sif / DEFAULT_REF) in text
        assert "owner" in text and "0644 (-rw-r--r--)" in text
        assert "SIF header" in text and "primary-system" in text and "signature" in text
        assert "squashfs superblock (primary partition)" in text and "zstd" in text
        assert "block size" in text
        await pilot.press("escape")
        assert app.screen is app.main
        # An uncompressed squashfs: its finding, reason and advice, and its flags.
        app.main.table.select_path(str(real_cache.enroot / "nvidia+pytorch+25.09-py3.sqsh"))
        await pilot.press("enter")
        text = rendered(app.screen.query_one(DetailsPane).renderable)
        assert "Uncompressed: it stores data blocks uncompressed (-noD)" in text
        assert "→ Recompress with zstd" in text
        assert "data raw (-noD)" in text
        await pilot.press("escape")
        # An oci-archive lists its layers.
        app.main.table.select_path(str(real_cache.podman / "pytorch-ngc.tar"))
        await pilot.press("enter")
        text = rendered(app.screen.query_one(DetailsPane).renderable)
        assert "oci-archive index" in text and f"docker.io/{DEFAULT_REF}" in text
        assert "layers    2" in text or "layers 2" in " ".join(text.split())


async def test_defaults_panel_toggles_and_shows_presence(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        panel = app.main.query_one(DefaultsPanel)
        assert not panel.display
        await pilot.press("d")
        assert panel.display
        text = rendered(panel.query_one(Static).content)
        lines = text.splitlines()
        assert "Profile" in lines[0]
        cpu = next(line for line in lines if line.startswith("CPU"))
        assert cpu.count("✔ present") == 3
        rocm = next(line for line in lines if line.startswith("AMD (ROCm)"))
        assert rocm.count("✘ missing") == 3
        assert panel.border_title == "Defaults · 6/9 present"
        await pilot.press("d")
        assert not panel.display


async def test_help_lists_every_binding_with_remaps(real_cache):
    app = make_app(real_cache.settings(keys={"rescan": "f5", "sort_next": "o", "nonsense": "x"}))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        assert "unknown binding id nonsense" in app.main.status.content.plain
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        entries = {entry.id: entry for entry in app.screen.entries if entry.id}
        assert entries["rescan"].keys == ("f5",)
        assert entries["sort_next"].keys == ("o",)
        for binding_id in (
            "quit", "help", "command_palette", "filter_text", "filter_finding", "sort_reverse",
            "toggle_defaults", "toggle_tree", "details", "cursor_down", "half_page_down",
            "cursor_bottom", "focus_next", "clear_filters", "filter_clear", "close", "caches",
        ):  # fmt: skip
            assert binding_id in entries, binding_id
        text = rendered(app.screen.query_one(Static).content)
        assert "f5" in text and "Rescan" in text and "rescan" in text
        await pilot.press("escape")
        # The remapped keys work, the old ones no longer do.
        await pilot.press("o")
        assert app.main.table.model.sort == "cache"
        await pilot.press("s")
        assert app.main.table.model.sort == "cache"
        await pilot.press("f5")
        assert app.scans.busy or app.inventory is not None


async def test_border_hints_name_the_remapped_keys(real_cache):
    # Keys the command's keymap check accepts (no clash with another binding).
    keys = {"pull_defaults": "f7", "toggle_jobs": "f6", "cancel_job": "x", "job_log": "o"}
    assert keymap_problem(keys, dict.fromkeys(keys, "config")) is None
    app = make_app(real_cache.settings(keys=keys))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await pilot.press("d")
        assert app.main.defaults_panel.border_subtitle == "f7 pulls the 3 missing"
        await pilot.press("f6")
        jobs = app.main.job_list
        assert jobs.display and jobs.border_subtitle == "f6 hides"
        jobs.update_jobs(demo_jobs(app.settings, time.time()))
        assert jobs.border_subtitle == "x cancels · o log · f6 hides"


async def test_small_terminal_folds_the_panes(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app)
        await pilot.pause()
        assert not app.main.tree.display
        assert not app.main.query_one(DetailsPane).display
        header = table_lines(app)[0]
        assert "IMAGE" in header and "FINDINGS" in header and "SIZE" in header
        await pilot.press("t")
        assert app.main.tree.display
        await pilot.press("t")
        assert not app.main.tree.display
        await pilot.press("enter")
        assert isinstance(app.screen, DetailsScreen)
        await pilot.press("escape")
        await pilot.resize_terminal(140, 40)
        await pilot.pause()
        assert app.main.tree.display and app.main.query_one(DetailsPane).display


async def test_tree_selection_scopes_the_table(real_cache):
    app = make_app(real_cache.settings())
    async with app.run_test(size=(150, 36)) as pilot:
        await settle(app)
        await pilot.press("shift+tab")  # from the table back to the tree
        assert app.focused is app.main.tree
        await pilot.press("j", "j", "enter")  # All caches -> sif -> enroot
        await pilot.pause()
        model = app.main.table.model
        assert model.scope is not None and model.scope.root == str(real_cache.enroot)
        assert len(model) == 4
        await pilot.press("j", "enter")  # the first repository of enroot
        await pilot.pause()
        assert model.scope.repo == "alpine"
        assert names(app) == ["alpine:3.19"]
        await pilot.press("escape")
        assert model.scope is None and len(model) == 9
