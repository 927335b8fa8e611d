"""Pilot test of the resource pools' defaults in the app: the real app factory, caches
made by the real tools, and a real master.yaml with two pools, one with its own CUDA image
and an `image` entry imgcache cannot read."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from imgcache.backends.config import load_settings
from imgcache.tui.screens.caches import CachesScreen
from imgcache.tui.screens.confirm import ConfirmDialog
from tests.app.helpers import make_app, rendered, settle

pytestmark = pytest.mark.tools

NVCR = "nvcr.io/nvidia/pytorch:25.09-py3"


async def test_a_pools_own_image_gets_its_row_and_the_note_is_shown(real_cache):
    master = real_cache.base / "master.yaml"
    master.write_text(
        f"""
resource_pools:
  - pool_name: cpu
    task_container_defaults:
      environment_variables: [OMP_NUM_THREADS=4]
      pod_spec: {{apiVersion: v1, kind: Pod}}
  - pool_name: gpu
    task_container_defaults:
      force_pull_image: false
      image:
        cuda: {NVCR}
        rocm: [rocm/pytorch:6]
"""
    )
    settings = load_settings(config=str(real_cache.config), determined_config=str(master))
    note = (
        f"{master}: resource_pools[1] (pool gpu) task_container_defaults.image.rocm: a list, "
        "not an image reference; not read, so the defaults shown may not be the ones jobs get"
    )
    assert settings.notes == (note,)
    app = make_app(settings)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app)
        await pilot.press("d")
        panel = app.main.defaults_panel
        text = rendered(panel.query_one(Static).content, width=400)
        lines = text.splitlines()
        # The cluster's three rows, then the pool's, labelled with it: enroot holds the
        # image (enroot names it without the registry), the other two caches do not.
        [row] = [i for i, line in enumerate(lines) if NVCR in line]
        assert lines[row].startswith("NVIDIA (CUDA)")
        assert lines[row].split(NVCR)[1].split() == [
            "✘", "missing", "✔", "present", "✘", "missing"
        ]  # fmt: skip
        assert lines[row + 1].startswith("pool gpu")
        assert sum(line.startswith("pool ") for line in lines) == 1  # the cpu pool sets none
        assert f"⚠ {note}" in text
        assert panel.border_title == "Defaults · 7/12 present"
        assert panel.border_subtitle == "P pulls the 5 missing"
        # The cursor on the pool's row names the pool's default in every cache.
        panel.focus()
        await pilot.press("down", "down", "down")
        assert {(p.default.pool, p.default.value) for p in panel.selected} == {("gpu", NVCR)}
        assert len(panel.selected) == 3

        # P offers the pool's image where it is missing, with the cluster's.
        await pilot.press("P")
        assert isinstance(app.screen, ConfirmDialog)
        body = rendered(app.screen.query_one("#confirm-body", Static).content, width=200)
        assert body.count(NVCR) == 2 and body.count("pool gpu cuda default") == 2
        await pilot.press("n")

        # The note is in the status bar and on the caches screen too.
        assert "image.rocm: a list, not an image reference" in app.main.status.content.plain
        await pilot.press("i")
        assert isinstance(app.screen, CachesScreen)
        report = rendered(app.screen.query_one("#caches-report Static", Static).content, 400)
        assert note in report
