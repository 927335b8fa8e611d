"""Reading every source into one checked `Settings`.

The config files (see `files` for which, in which order) are checked one by one
and merged key by key: a later file's value replaces an earlier one's, tables are
merged, `[keys]` entries replace per binding id, and the `[[cache]]` lists add up.
Determined's master.yaml adds its image root and default images (an imgcache config
setting outranks it), its resource pools' images and its notes, and `--cache` options
add caches. `Settings.origins` remembers
which file each setting came from.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from imgcache.backends.config.determined import read_master
from imgcache.backends.config.files import discovered_files, read_toml
from imgcache.backends.config.model import (
    CACHE_OPTION,
    DETERMINED_CONFIG,
    CacheSpec,
    ConfigError,
    Settings,
    dedupe,
    parse_cache_arg,
    shown,
)
from imgcache.backends.config.schema import SETTINGS, Layer, check_file


def _named_file(value: str, option: str) -> Path:
    """The file an option or variable names; it must exist and be a regular file."""
    if not value:
        raise ConfigError(f"{option}: no file named")
    path = Path(value)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{option} {shown(value)}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{option} {shown(value)}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{option} {shown(value)}: not a regular file")
    return path


def config_files(config: str | None, env: Mapping[str, str] | None = None) -> list[Path]:
    """The config files to read, lowest precedence first.

    `config` (`--config`), else `IMGCACHE_CONFIG`, is read alone; `IMGCACHE_CONFIG=`
    (empty) reads none; otherwise the site files and the user's file that exist.
    """
    env = os.environ if env is None else env
    if config is not None:
        return [_named_file(config, "--config")]
    if "IMGCACHE_CONFIG" in env:
        value = env["IMGCACHE_CONFIG"]
        return [_named_file(value, "IMGCACHE_CONFIG")] if value else []
    return discovered_files(env)


def _merge(settings: Settings, layers: Sequence[Layer]) -> Settings:
    """`settings` with the layers applied in order, each key overriding the one before."""
    merged: dict[str, tuple[Any, str]] = {}
    keys: dict[str, tuple[str, str]] = {}
    caches: list[CacheSpec] = list(settings.caches)
    for layer in layers:
        merged.update((key, (value, layer.origin)) for key, value in layer.values.items())
        keys.update((name, (value, layer.origin)) for name, value in layer.keys.items())
        caches.extend(layer.caches)
    changes: dict[str, Any] = {}
    images = dict(settings.default_images)
    image_origins = dict(settings.default_origins)
    origins = dict(settings.origins)
    for key, (value, origin) in merged.items():
        setting = SETTINGS[key]
        if setting.attr is None:
            images[setting.name] = value
            image_origins[setting.name] = origin
        else:
            changes[setting.attr] = value
        origins[key] = origin
    for name, (_value, origin) in keys.items():
        origins[f"keys.{name}"] = origin
    return replace(
        settings,
        **changes,
        caches=tuple(caches),
        default_images=images,
        default_origins=image_origins,
        keys={**settings.keys, **{name: value for name, (value, _o) in keys.items()}},
        origins=origins,
        sources=(*settings.sources, *(layer.origin for layer in layers)),
    )


def apply_files(settings: Settings, paths: Sequence[Path]) -> Settings:
    """`settings` with the config files `paths` (lowest precedence first) read and merged."""
    layers = [check_file(read_toml(path), shown(str(path))) for path in paths]
    return _merge(settings, layers)


def apply_determined(settings: Settings, path: Path) -> Settings:
    """`settings` with what the master.yaml at `path` says added."""
    master = read_master(path)
    images = dict(settings.default_images)
    origins = dict(settings.default_origins)
    for env, image in master.images.items():
        # An explicit imgcache config setting outranks master.yaml.
        if env not in origins:
            images[env] = image
            origins[env] = master.image_origin
    return replace(
        settings,
        caches=(*settings.caches, *master.caches),
        default_images=images,
        default_origins=origins,
        pools=(*settings.pools, *master.pools),
        notes=(*settings.notes, *master.notes),
        sources=(*settings.sources, master.origin),
    )


def load_settings(
    *,
    config: str | None = None,
    determined_config: str | None = None,
    cache_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read every source and return the combined, checked settings.

    `IMGCACHE_CONFIG` and `IMGCACHE_DETERMINED_CONFIG` in the environment stand in
    for the options when those are not given; set to an empty string, they turn
    the file off (no config file, no master.yaml). The site-wide config files are
    described in `imgcache.backends.config.files`.
    """
    env = os.environ if env is None else env
    settings = apply_files(Settings(), config_files(config, env))
    if determined_config is None and "IMGCACHE_DETERMINED_CONFIG" in env:
        value = env["IMGCACHE_DETERMINED_CONFIG"]
        if value:
            master = _named_file(value, "IMGCACHE_DETERMINED_CONFIG")
            settings = apply_determined(settings, master)
    elif determined_config is not None:
        settings = apply_determined(settings, _named_file(determined_config, "--determined-config"))
    elif os.path.isfile(DETERMINED_CONFIG):
        settings = apply_determined(settings, Path(DETERMINED_CONFIG))
    extra = [parse_cache_arg(arg, CACHE_OPTION) for arg in cache_args]
    return replace(settings, caches=dedupe([*settings.caches, *extra]))
