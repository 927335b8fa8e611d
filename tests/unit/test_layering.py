"""The domain is usable without the UI: importing imgcache.backends never imports Textual."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import pkgutil, importlib, sys
import imgcache.backends
for module in pkgutil.walk_packages(imgcache.backends.__path__, "imgcache.backends."):
    importlib.import_module(module.name)
print(sorted(name for name in sys.modules if name.split(".")[0] == "textual"))
"""

CLI_PROGRAM = """
import sys
import imgcache.tui.cli, imgcache.tui.listing, imgcache.tui.format
print(sorted(name for name in sys.modules if name.split(".")[0] == "textual"))
"""


def run(program: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_backends_never_import_textual():
    assert run(PROGRAM) == "[]"


def test_command_line_listing_does_not_load_the_app():
    # `imgcache list` in a script loop should not pay for starting Textual.
    assert run(CLI_PROGRAM) == "[]"
