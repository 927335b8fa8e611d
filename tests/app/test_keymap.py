"""A config's `[keys]` table is checked before the app starts: the installed command on
a real terminal (a pty) with real config files refuses an unknown id, an unknown key
name and a clash with one line naming the file (exit 2), and starts with a good one."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from imgcache.tui.keymap import KeyNameError, keymap_problem, normalize_key

IMGCACHE = str(Path(sys.executable).parent / "imgcache")


def on_a_terminal(args: list[str], *, quit_when: bytes | None = None, timeout: float = 60):
    """Run the installed `imgcache` on a pty (80x24) as its controlling terminal. Without
    `quit_when`, stderr goes to a pipe (to read the one line); with it, stderr is the
    terminal too (Textual draws there) and q is pressed once the screen shows `quit_when`.
    Returns (status, screen bytes, stderr)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [IMGCACHE, *args],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE if quit_when is None else slave,
        env=env,
        start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + timeout
    pressed = False
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(master, 65536)
                except OSError:  # EIO: the command closed the terminal on its way out
                    break
            if quit_when is not None and not pressed and quit_when in screen:
                os.write(master, b"q")
                pressed = True
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"imgcache still running after {timeout}s; screen: {screen[-400:]!r}")
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        return proc.wait(), screen, stderr
    finally:
        os.close(master)
        if proc.stderr:
            proc.stderr.close()


def config_with_keys(tmp_path: Path, keys: str) -> Path:
    cache = tmp_path / "enroot"
    cache.mkdir(exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(f'[[cache]]\nkind = "enroot"\npath = "{cache}"\n\n[keys]\n{keys}\n')
    return config


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        (
            'sort_next = "d"',
            "keys.sort_next: d is already bound to toggle_defaults (Main view); "
            "choose another key, or remap toggle_defaults too",
        ),
        (
            'rescan = "notakey"',
            'keys.rescan: "notakey" is not a key name Textual knows '
            "(e.g. r, R, f5, ctrl+r, question_mark, pageup)",
        ),
        (
            'sortnext = "o"',
            "keys.sortnext: no binding has this id; did you mean sort_next? "
            "(the help screen, ?, lists them)",
        ),
    ],
)
def test_bad_keys_are_refused_before_the_app_starts(tmp_path, keys, words):
    config = config_with_keys(tmp_path, keys)
    status, screen, stderr = on_a_terminal(["--config", str(config)])
    assert status == 2
    assert stderr == f"imgcache: {config}: {words}\n"
    assert b"\x1b[" not in screen  # nothing was drawn: the app never started


def test_config_show_refuses_the_same_keys(tmp_path):
    config = config_with_keys(tmp_path, 'sort_next = "d"')
    done = subprocess.run(
        [IMGCACHE, "config", "--show", "--config", str(config)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"imgcache: {config}: keys.sort_next: d is already bound")


def test_good_keys_start_the_app(tmp_path):
    config = config_with_keys(tmp_path, 'rescan = "r,f5"\nsort_next = "d"\ntoggle_defaults = "s"')
    # "no images in" is the empty cache's message: the app is up and has scanned.
    status, _screen, stderr = on_a_terminal(["--config", str(config)], quit_when=b"no images in")
    assert (status, stderr) == (0, "")


# -- the rules, one by one --------------------------------------------------------------


@pytest.mark.parametrize(
    ("keymap", "expected"),
    [
        ({"rescan": "r,f5"}, None),
        ({"rescan": " r , f5 "}, None),  # Textual strips blanks around each key
        ({"sort_next": "d", "toggle_defaults": "s"}, None),  # a swap
        ({"quit": "q,ctrl+q"}, None),
        ({"close": "escape,q"}, None),  # screens may shadow app-wide keys, as the app does
        ({"sort_next": "x", "toggle_tree": "x"}, "x is also given to toggle_tree (Main view)"),
        ({"pull_defaults": "u"}, "u is already bound to clear_marks (Image table)"),
        ({"cancel_job": "k"}, "k is already bound to cursor_up (Jobs pane (J))"),
        ({"help": "h"}, "h is already bound to cursor_left (Defaults panel (d))"),
        ({"rescan": "ctrl+i"}, "ctrl+i (the same key as tab) is already bound to focus_next"),
        ({"close": "escape,ctrl+p"}, "ctrl+p is already bound to command_palette (Everywhere)"),
        ({"rescan": "?"}, "question_mark is already bound to help (Everywhere)"),
        ({"rescan": "r,,f5"}, "an empty key"),
        ({"rescan": "F5"}, "did you mean f5?"),
        ({"rescan": "shift+ctrl+r"}, "Textual writes it ctrl+shift+r"),
        ({"rescan": "shift+r"}, "a shifted character arrives as itself"),
        ({"rescan": "ctrl+?"}, "write it ctrl+question_mark"),
        ({"rescan": "super+f5"}, None),
        ({"rescan": "win+f5"}, '"win" is not a modifier'),
    ],
)
def test_keymap_rules(keymap, expected):
    problem = keymap_problem(keymap, {f"keys.{k}": "site.toml" for k in keymap})
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem
        assert problem.startswith("site.toml: keys.")


def test_key_names_as_textual_matches_them():
    assert normalize_key("?") == "question_mark"
    assert normalize_key("slash") == "slash"
    assert normalize_key("ctrl+shift+up") == "ctrl+shift+up"
    for bad in ("latin_small_letter_a", "Enter", "ctrl+", "\x1b"):
        with pytest.raises(KeyNameError):
            normalize_key(bad)
