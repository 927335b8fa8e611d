"""What the settings are: the `Settings` record, a configured cache, and the error type.

Everything here is plain data and small checks that need no file: the loaders in
`files`, `schema`, `determined` and `loading` fill these records in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from imgcache.backends.inventory.model import CacheKind

#: The site-wide config file read under the XDG ones (`IMGCACHE_SYSTEM_CONFIG` replaces it).
SYSTEM_CONFIG = "/etc/imgcache/config.toml"
DETERMINED_CONFIG = "/etc/determined/master.yaml"
ENVIRONMENTS = ("cpu", "cuda", "rocm")
KIND_ALIASES = {
    "singularity": CacheKind.SINGULARITY,
    "apptainer": CacheKind.SINGULARITY,
    "enroot": CacheKind.ENROOT,
    "podman": CacheKind.PODMAN,
}
#: The pyxis page's advice for squashfs files that are reused many times.
DEFAULT_SQUASH_OPTIONS = ("-comp", "zstd", "-Xcompression-level", "3", "-b", "1M")
#: Where a `--cache KIND:PATH` option's cache is said to come from.
CACHE_OPTION = "--cache"


class ConfigError(ValueError):
    """A setting is missing, malformed or points at something unusable.

    The message is one line that starts with the file (or option) and the setting.
    """


def shown(text: str) -> str:
    """`text` with control characters escaped, for a one-line message on a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """One configured cache: its kind and its root directory."""

    kind: CacheKind
    path: str
    """Absolute, normalised path of the cache root."""
    origin: str = "command line"
    """Where this cache was configured, for messages."""

    @property
    def label(self) -> str:
        """How the cache is named on screen: `kind:path`."""
        return f"{self.kind.value}:{self.path}"


@dataclass(frozen=True, slots=True)
class PoolImages:
    """One resource pool of master.yaml and the default images its own
    `task_container_defaults.image` names (environment -> image; empty: none)."""

    name: str
    images: Mapping[str, str]
    origin: str
    """The file and the key, for messages: `... resource_pools[1] (pool gpu) ...image`."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything imgcache was told, from every source, checked."""

    caches: tuple[CacheSpec, ...] = ()
    profile: str | None = None
    """Name of the defaults profile chosen by the config; None means the newest."""
    default_images: Mapping[str, str] = field(default_factory=dict)
    """Per-environment default images from master.yaml and the config (config wins)."""
    default_origins: Mapping[str, str] = field(default_factory=dict)
    """Where each entry of `default_images` came from."""
    pools: tuple[PoolImages, ...] = ()
    """master.yaml's resource pools, each with the images it sets over the cluster's."""
    notes: tuple[str, ...] = ()
    """One line each: what a file says about the default images that imgcache does not
    read (an `image` of a form it cannot read, an unknown environment, ...)."""
    stale_days: int = 90
    scan_workers: int = 4
    poll_interval: float = 5.0
    rescan_interval: float = 300.0
    force_polling: bool = False
    file_mode: int = 0o644
    dir_mode: int = 0o755
    job_concurrency: int = 2
    job_backend: str = "auto"
    squash_options: tuple[str, ...] = DEFAULT_SQUASH_OPTIONS
    trash_grace_days: int = 7
    allowed_owners: tuple[str, ...] = ()
    """Owners whose files delete may remove; empty means any owner."""
    keys: Mapping[str, str] = field(default_factory=dict)
    """Key binding overrides: binding id -> comma-separated keys."""
    read_only: bool = False
    sources: tuple[str, ...] = ()
    """The files that were read, in order (config files, then master.yaml)."""
    origins: Mapping[str, str] = field(default_factory=dict)
    """Where each setting written in a file came from: `section.name` (and `keys.ID`)
    -> the file; a setting missing here has its default value."""


def parse_cache_arg(text: str, origin: str = "command line") -> CacheSpec:
    """Parse `KIND:PATH` (KIND is singularity, apptainer, enroot or podman)."""
    kind_text, sep, path = text.partition(":")
    if not sep or not path:
        raise ConfigError(
            f"--cache {shown(text)!r}: expected KIND:PATH, e.g. singularity:/shared/sif "
            "(KIND is singularity, apptainer, enroot or podman)"
        )
    return make_cache(kind_text, path, origin)


def make_cache(kind_text: str, path: str, origin: str) -> CacheSpec:
    """Build a `CacheSpec`, refusing unknown kinds, empty paths and NUL bytes."""
    kind = KIND_ALIASES.get(kind_text.strip().lower())
    if kind is None:
        raise ConfigError(
            f"{origin}: unknown cache kind {shown(kind_text)!r} "
            "(use singularity, apptainer, enroot or podman)"
        )
    if "\0" in path:
        raise ConfigError(f"{origin}: cache path contains a NUL byte")
    if not path.strip():
        # os.path.abspath("") is the working directory: never a cache by accident.
        raise ConfigError(f"{origin}: cache path is empty")
    return CacheSpec(kind, os.path.abspath(os.path.expanduser(path)), origin)


def check_cache_paths(caches: Sequence[CacheSpec]) -> list[str]:
    """One line per cache whose root is missing, not a directory, or unreadable."""
    problems = []
    for cache in caches:
        if not os.path.exists(cache.path):
            problems.append(
                f"{shown(cache.label)}: no such directory (configured in {cache.origin}); "
                "create it or fix the path"
            )
        elif not os.path.isdir(cache.path):
            problems.append(f"{shown(cache.label)}: not a directory (configured in {cache.origin})")
        elif not os.access(cache.path, os.R_OK | os.X_OK):
            problems.append(
                f"{shown(cache.label)}: permission denied; run as a user who can read the cache"
            )
    return problems


def dedupe(caches: Sequence[CacheSpec]) -> tuple[CacheSpec, ...]:
    """Drop repeats of the same kind and directory, keeping the first."""
    seen: set[tuple[CacheKind, str]] = set()
    unique = []
    for cache in caches:
        key = (cache.kind, os.path.realpath(cache.path))
        if key not in seen:
            seen.add(key)
            unique.append(cache)
    return tuple(unique)
