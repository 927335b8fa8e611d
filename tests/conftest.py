"""Test-wide isolation: no test reads the config of the machine it runs on."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch, tmp_path_factory):
    # Empty values turn off /etc/imgcache/config.toml and /etc/determined/master.yaml,
    # and a private XDG_CONFIG_HOME hides the user's own config; subprocesses inherit it.
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("IMGCACHE_CONFIG", "")
    monkeypatch.setenv("IMGCACHE_DETERMINED_CONFIG", "")
