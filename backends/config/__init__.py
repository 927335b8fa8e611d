"""Settings: which caches to show, which defaults to expect, and how to behave.

Sources, later ones adding to or overriding earlier ones:

1. imgcache's TOML config files, merged key by key: the site files
   (`/etc/imgcache/config.toml`, `$XDG_CONFIG_DIRS/imgcache/config.toml`), then the
   user's (`$XDG_CONFIG_HOME/imgcache/config.toml`); `--config FILE` is read alone
   instead (`files` says exactly which and in which order).
2. Determined's master config (`--determined-config FILE`, else
   `/etc/determined/master.yaml` when it exists): `resource_manager.singularity_image_root`
   (or `apptainer_image_root`) becomes a singularity cache and
   `task_container_defaults.image` sets default images, and each of `resource_pools`
   its own (`determined`; what it cannot read about images becomes `Settings.notes`).
3. `--cache KIND:PATH` options.

Every value has a type and a range (`schema`, `values`); every problem is a
`ConfigError` whose one-line message starts with the file and the setting.
Caches from all sources are shown together; the same directory named twice is shown once.
"""

from __future__ import annotations

from imgcache.backends.config.files import (
    cache_dir,
    discovered_files,
    read_toml,
    site_config_paths,
    state_dir,
    user_config_path,
)
from imgcache.backends.config.loading import (
    apply_determined,
    apply_files,
    config_files,
    load_settings,
)
from imgcache.backends.config.model import (
    CACHE_OPTION,
    DEFAULT_SQUASH_OPTIONS,
    DETERMINED_CONFIG,
    ENVIRONMENTS,
    KIND_ALIASES,
    SYSTEM_CONFIG,
    CacheSpec,
    ConfigError,
    PoolImages,
    Settings,
    check_cache_paths,
    dedupe,
    make_cache,
    parse_cache_arg,
    shown,
)
from imgcache.backends.config.schema import SECTIONS, SETTINGS, Setting

__all__ = [
    "CACHE_OPTION",
    "DEFAULT_SQUASH_OPTIONS",
    "DETERMINED_CONFIG",
    "ENVIRONMENTS",
    "KIND_ALIASES",
    "SECTIONS",
    "SETTINGS",
    "SYSTEM_CONFIG",
    "CacheSpec",
    "ConfigError",
    "PoolImages",
    "Setting",
    "Settings",
    "apply_determined",
    "apply_files",
    "cache_dir",
    "check_cache_paths",
    "config_files",
    "dedupe",
    "discovered_files",
    "load_settings",
    "make_cache",
    "parse_cache_arg",
    "read_toml",
    "shown",
    "site_config_paths",
    "state_dir",
    "user_config_path",
]
