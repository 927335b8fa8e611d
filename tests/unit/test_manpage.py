"""The man page: current with the parser, complete, and rendered by groff without a warning."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from imgcache.tui.cli import build_parser
from imgcache.tui.manpage import escape, render

PAGE = Path(__file__).resolve().parents[2] / "man" / "imgcache.1"


def test_the_committed_man_page_is_current():
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "man/imgcache.1 is out of date: run ./scripts/manpage to regenerate it"
    )


def _parsers(parser: argparse.ArgumentParser, name: str):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_command_and_option_is_on_the_page():
    page = render()
    for name, parser in _parsers(build_parser(), "imgcache"):
        if name != "imgcache":
            assert f'.SS "{escape(name)}"' in page
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"\\fB{escape(option)}\\fR" in page, (name, option)
    assert "\\fB\\-\\-version\\fR" in page


def test_the_page_has_the_exit_statuses_and_the_epilogs():
    text = _rendered()
    status = text.split("EXIT STATUS", 1)[1].split("ENVIRONMENT", 1)[0]
    for code in ("0", "1", "2", "130", "129, 143"):
        assert f"\n       {code}" in status, code
    assert "SIGHUP or SIGTERM" in status
    # Subcommands' epilogs are kept, their examples line by line.
    assert "imgcache pull --cuda --to singularity          the CUDA default image" in text
    assert "imgcache completion bash > /etc/bash_completion.d/imgcache" in text


def _rendered() -> str:
    if not shutil.which("groff"):
        pytest.skip("needs groff (man-db's renderer)")
    done = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-rLL=100n", "-P-cbou"],
        input=render(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stderr == ""  # -ww: every warning
    return done.stdout


def test_groff_renders_the_page_without_a_warning():
    text = _rendered()
    assert text.startswith("IMGCACHE(1)")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "FILES"):
        assert f"\n{section}\n" in text
