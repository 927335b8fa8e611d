"""Files named like images that are none show in the app under their own finding.

An empty `.sqsh` (a copy that never got its content) and a FIFO at an enroot
image's name sit beside real images; the finding filter picks them out under
`not-an-image`, and the details say what each one is.
"""

from __future__ import annotations

import os

import pytest

from imgcache.tui.screens.finding_picker import FindingPicker
from tests.app.helpers import make_app, settle

pytestmark = pytest.mark.tools


async def test_the_finding_filter_shows_files_that_are_no_image(real_cache):
    (real_cache.enroot / "nvidia+cuda+12.6.sqsh").touch()
    os.mkfifo(real_cache.enroot / "rocm+pytorch+6.2.sqsh")
    (real_cache.enroot / "README.txt").write_text("images for the pyxis jobs\n")
    app = make_app(real_cache.settings())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app)
        await pilot.press("f")
        assert isinstance(app.screen, FindingPicker)
        # all, any, corrupt, incomplete, not-an-image
        await pilot.press("j", "j", "j", "j", "enter")
        await pilot.pause()
        model = app.main.table.model
        assert model.finding == "not-an-image"
        shown = {row.image.path: row.image for row in model.visible()}
        assert set(shown) == {
            str(real_cache.enroot / "nvidia+cuda+12.6.sqsh"),
            str(real_cache.enroot / "rocm+pytorch+6.2.sqsh"),
        }
        reasons = {os.path.basename(p): i.findings[0].reason for p, i in shown.items()}
        assert reasons["nvidia+cuda+12.6.sqsh"] == "an empty file, though named like an image"
        assert reasons["rocm+pytorch+6.2.sqsh"].startswith("a FIFO (named pipe), not a regular")
        # The README is listed, with no finding.
        await pilot.press("escape")
        readme = model.rows[str(real_cache.enroot / "README.txt")]
        assert readme.image.codes == ()
