"""Which config files are read, in which order, and reading one safely.

The order, lowest first (each later file overrides the earlier ones key by key):

1. the site file, `/etc/imgcache/config.toml` (`IMGCACHE_SYSTEM_CONFIG=FILE` names
   another one instead, `IMGCACHE_SYSTEM_CONFIG=` none);
2. `imgcache/config.toml` in each of `$XDG_CONFIG_DIRS` (default `/etc/xdg`), the
   last listed first, so the first listed wins as the XDG spec says;
3. the user's file, `$XDG_CONFIG_HOME/imgcache/config.toml` (`~/.config/...`).

`--config FILE` (or `IMGCACHE_CONFIG=FILE`) is read alone instead of all of them;
`IMGCACHE_CONFIG=` (empty) reads none. The XDG directories come from platformdirs,
which reads them from the process environment.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from imgcache.backends.config.model import SYSTEM_CONFIG, ConfigError, shown

APP = "imgcache"
CONFIG_NAME = "config.toml"
#: No config file is this large; a bigger one is a mistake (or /dev/zero behind a link).
MAX_CONFIG_BYTES = 1 << 20


def _dirs() -> platformdirs.PlatformDirs:
    return platformdirs.PlatformDirs(APP, appauthor=False, multipath=True)


def user_config_path() -> Path:
    """The user's config file: `$XDG_CONFIG_HOME/imgcache/config.toml` (`~/.config/...`)."""
    return Path(_dirs().user_config_dir) / CONFIG_NAME


def site_config_paths(env: Mapping[str, str] | None = None) -> list[Path]:
    """The site-wide config files that may exist, lowest precedence first."""
    env = os.environ if env is None else env
    site = env.get("IMGCACHE_SYSTEM_CONFIG", SYSTEM_CONFIG)
    paths = [Path(site)] if site else []
    xdg = [Path(d) / CONFIG_NAME for d in _dirs().site_config_dir.split(os.pathsep) if d]
    return [*paths, *reversed(xdg)]


def state_dir() -> Path:
    """Where imgcache keeps state such as job logs: `$XDG_STATE_HOME/imgcache`."""
    return Path(_dirs().user_state_dir)


def cache_dir() -> Path:
    """Where imgcache may keep data it can rebuild: `$XDG_CACHE_HOME/imgcache`."""
    return Path(_dirs().user_cache_dir)


def discovered_files(env: Mapping[str, str] | None = None) -> list[Path]:
    """The site and user config files that exist, lowest precedence first.

    A path that exists but is not a regular file (a directory, a FIFO planted where a
    config is looked for) is an error rather than silently skipped.
    """
    found: list[Path] = []
    seen: set[str] = set()
    # Walked from the highest precedence down, so a file listed twice (XDG_CONFIG_DIRS=/etc
    # names /etc/imgcache/config.toml again) counts where it ranks highest.
    for path in reversed([*site_config_paths(env), user_config_path()]):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"{shown(str(path))}: cannot read: {exc.strerror}") from None
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{shown(str(path))}: not a regular file")
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found.append(path)
    return found[::-1]


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most `MAX_CONFIG_BYTES`, or a one-line error."""
    name = shown(str(path))
    try:
        # O_NONBLOCK: a FIFO put in place of the file after the check must not hang us.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{name}: not a regular file")
        try:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{name}: larger than {MAX_CONFIG_BYTES >> 20} MiB; not a config file")
    return raw


def decode(raw: bytes, path: Path, what: str) -> str:
    """`raw` as UTF-8 text, or a one-line error saying where the first bad byte is."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{shown(str(path))}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
            f"{what} files are UTF-8"
        ) from None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse one config file; every failure is a one-line `ConfigError` naming the file."""
    name = shown(str(path))
    text = decode(read_bytes(path), path, "TOML")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {one_line(str(exc))}") from None
    except RecursionError:
        raise ConfigError(f"{name}: not valid TOML: arrays or tables nested too deeply") from None


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of blanks made single spaces."""
    return " ".join(text.split())
