"""Test-wide isolation: no test reads the config of the machine it runs on."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch, tmp_path_factory):
    # Empty values turn off every config file and /etc/determined/master.yaml, and
    # private XDG dirs hide the site's and the user's own config even from a test that
    # unsets IMGCACHE_CONFIG; subprocesses inherit it.
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path_factory.mktemp("xdg-site")))
    monkeypatch.setenv("IMGCACHE_SYSTEM_CONFIG", "")
    monkeypatch.setenv("IMGCACHE_CONFIG", "")
    monkeypatch.setenv("IMGCACHE_DETERMINED_CONFIG", "")
