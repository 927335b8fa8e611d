"""`imgcache --demo` writes only into a private directory of the user's own.

Without XDG_RUNTIME_DIR the demo lives under a predictable name in the shared temp
directory; a link or a directory another user planted there must never receive it.
"""

from __future__ import annotations

import os

import pytest

from imgcache.tui.cli import demo_dir
from imgcache.tui.cli_common import Fail


def test_the_demo_directory_is_made_private(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = demo_dir()
    assert path == str(tmp_path / f"imgcache-demo-{os.getuid()}")
    st = os.lstat(path)
    assert st.st_uid == os.getuid() and st.st_mode & 0o777 == 0o700
    assert demo_dir() == path  # reused on the next start


def test_a_planted_link_is_refused_and_its_target_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / f"imgcache-demo-{os.getuid()}").symlink_to(target)
    with pytest.raises(Fail, match="is not a private directory of yours"):
        demo_dir()
    assert list(target.iterdir()) == []


def test_a_directory_open_to_others_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    planted = tmp_path / f"imgcache-demo-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)
    with pytest.raises(Fail, match="remove it, or set XDG_RUNTIME_DIR"):
        demo_dir()


def test_another_users_directory_is_refused(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory another user owns")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    planted = tmp_path / f"imgcache-demo-{os.getuid()}"
    planted.mkdir(mode=0o700)
    os.chown(planted, 65534, 65534)
    with pytest.raises(Fail, match="is not a private directory of yours"):
        demo_dir()
