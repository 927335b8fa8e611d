"""Settings: which caches to show, which defaults to expect, and how to behave.

Sources, later ones adding to earlier ones:

1. imgcache's TOML config: `--config FILE`, else `$XDG_CONFIG_HOME/imgcache/config.toml`
   (`~/.config/...`), else `/etc/imgcache/config.toml`. The first that exists is read.
2. Determined's master config (`--determined-config FILE`, else
   `/etc/determined/master.yaml` when it exists): `resource_manager.singularity_image_root`
   (or `apptainer_image_root`) becomes a singularity cache and
   `task_container_defaults.image` sets default images.
3. `--cache KIND:PATH` options.

Caches from all sources are shown together; the same directory named twice is shown once.
Every problem is a `ConfigError` whose message names the file and the setting.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from imgcache.backends.inventory.model import CacheKind

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


class ConfigError(ValueError):
    """A setting is missing, malformed or points at something unusable."""


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
class Settings:
    """Everything imgcache was told, from every source, checked."""

    caches: tuple[CacheSpec, ...] = ()
    profile: str | None = None
    """Name of the defaults profile chosen by the config; None means the newest."""
    default_images: Mapping[str, str] = field(default_factory=dict)
    """Per-environment default images from master.yaml and the config (config wins)."""
    default_origins: Mapping[str, str] = field(default_factory=dict)
    """Where each entry of `default_images` came from."""
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
    """The files that were read, in order."""


def parse_cache_arg(text: str, origin: str = "command line") -> CacheSpec:
    """Parse `KIND:PATH` (KIND is singularity, apptainer, enroot or podman)."""
    kind_text, sep, path = text.partition(":")
    if not sep or not path:
        raise ConfigError(
            f"--cache {text!r}: expected KIND:PATH, e.g. singularity:/shared/sif "
            "(KIND is singularity, apptainer, enroot or podman)"
        )
    return make_cache(kind_text, path, origin)


def make_cache(kind_text: str, path: str, origin: str) -> CacheSpec:
    """Build a `CacheSpec`, refusing unknown kinds and relative nonsense."""
    kind = KIND_ALIASES.get(kind_text.strip().lower())
    if kind is None:
        raise ConfigError(
            f"{origin}: unknown cache kind {kind_text!r} "
            "(use singularity, apptainer, enroot or podman)"
        )
    if "\0" in path:
        raise ConfigError(f"{origin}: cache path contains a NUL byte")
    return CacheSpec(kind, os.path.abspath(os.path.expanduser(path)), origin)


def check_cache_paths(caches: Sequence[CacheSpec]) -> list[str]:
    """One line per cache whose root is missing, not a directory, or unreadable."""
    problems = []
    for cache in caches:
        if not os.path.exists(cache.path):
            problems.append(
                f"{cache.label}: no such directory (configured in {cache.origin}); "
                "create it or fix the path"
            )
        elif not os.path.isdir(cache.path):
            problems.append(f"{cache.label}: not a directory (configured in {cache.origin})")
        elif not os.access(cache.path, os.R_OK | os.X_OK):
            problems.append(
                f"{cache.label}: permission denied; run as a user who can read the cache"
            )
    return problems


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/imgcache/config.toml`, defaulting to `~/.config`."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "imgcache" / "config.toml"


def find_config(explicit: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The config file to read, or None when there is none."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return path
    for candidate in (user_config_path(env), Path(SYSTEM_CONFIG)):
        if candidate.is_file():
            return candidate
    return None


_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "defaults": {"profile": str, "cpu": str, "cuda": str, "rocm": str},
    "findings": {"stale_days": int},
    "scan": {"workers": int},
    "watch": {"poll_interval": (int, float), "rescan_interval": (int, float), "polling": bool},
    "permissions": {"file_mode": str, "dir_mode": str},
    "jobs": {"concurrency": int, "backend": str, "squash_options": str},
    "delete": {"trash_grace_days": int, "allowed_owners": list},
    "keys": {},
    "ui": {"read_only": bool},
}
_BACKENDS = ("auto", "runtime", "builtin")


def _mode(value: str, where: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        raise ConfigError(f'{where}: {value!r} is not an octal mode like "0644"') from None
    if not 0 <= mode <= 0o7777:
        raise ConfigError(f"{where}: {value!r} is not a file mode")
    return mode


def _positive(value: float, where: str) -> float:
    if value <= 0:
        raise ConfigError(f"{where}: must be greater than 0, not {value}")
    return value


def apply_toml(settings: Settings, data: Mapping[str, Any], origin: str) -> Settings:
    """Return `settings` with the values of one parsed config file applied."""
    caches = list(settings.caches)
    for key in data:
        if key != "cache" and key not in _SCHEMA:
            known = ", ".join(["cache", *_SCHEMA])
            raise ConfigError(f"{origin}: unknown section [{key}] (known: {known})")
    raw_caches = data.get("cache", [])
    if not isinstance(raw_caches, list):
        raise ConfigError(f"{origin}: caches are written [[cache]] with kind and path")
    for i, entry in enumerate(raw_caches, 1):
        where = f"{origin}: [[cache]] #{i}"
        if not isinstance(entry, dict) or set(entry) - {"kind", "path"}:
            raise ConfigError(f'{where}: expected only kind = "..." and path = "..."')
        if not isinstance(entry.get("kind"), str) or not isinstance(entry.get("path"), str):
            raise ConfigError(f'{where}: needs kind = "..." and path = "..."')
        caches.append(make_cache(entry["kind"], entry["path"], origin))

    values: dict[str, Any] = {}
    for section, fields in _SCHEMA.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        for name, value in table.items():
            where = f"{origin}: {section}.{name}"
            if section == "keys":
                if not isinstance(value, str):
                    raise ConfigError(f'{where}: keys are strings like "ctrl+p,p"')
                continue
            expected = fields.get(name)
            if expected is None:
                raise ConfigError(f"{where}: unknown setting (known: {', '.join(fields)})")
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(f"{where}: wrong type {type(value).__name__}")
            values[f"{section}.{name}"] = value

    defaults = dict(settings.default_images)
    origins = dict(settings.default_origins)
    for env in ENVIRONMENTS:
        if f"defaults.{env}" in values:
            defaults[env] = values[f"defaults.{env}"].strip()
            origins[env] = origin
    changes: dict[str, Any] = {
        "caches": tuple(caches),
        "default_images": defaults,
        "default_origins": origins,
        "sources": (*settings.sources, origin),
    }
    if "defaults.profile" in values:
        changes["profile"] = values["defaults.profile"]

    def where(key: str) -> str:
        return f"{origin}: {key}"

    if "findings.stale_days" in values:
        changes["stale_days"] = int(_positive(values["findings.stale_days"], where("stale_days")))
    if "scan.workers" in values:
        changes["scan_workers"] = int(_positive(values["scan.workers"], where("scan.workers")))
    if "watch.poll_interval" in values:
        changes["poll_interval"] = float(
            _positive(values["watch.poll_interval"], where("watch.poll_interval"))
        )
    if "watch.rescan_interval" in values:
        changes["rescan_interval"] = float(
            _positive(values["watch.rescan_interval"], where("watch.rescan_interval"))
        )
    if "watch.polling" in values:
        changes["force_polling"] = values["watch.polling"]
    if "permissions.file_mode" in values:
        changes["file_mode"] = _mode(values["permissions.file_mode"], where("file_mode"))
    if "permissions.dir_mode" in values:
        changes["dir_mode"] = _mode(values["permissions.dir_mode"], where("dir_mode"))
    if "jobs.concurrency" in values:
        changes["job_concurrency"] = int(
            _positive(values["jobs.concurrency"], where("jobs.concurrency"))
        )
    if "jobs.backend" in values:
        backend = values["jobs.backend"]
        if backend not in _BACKENDS:
            raise ConfigError(f"{origin}: jobs.backend must be one of {', '.join(_BACKENDS)}")
        changes["job_backend"] = backend
    if "jobs.squash_options" in values:
        changes["squash_options"] = tuple(shlex.split(values["jobs.squash_options"]))
    if "delete.trash_grace_days" in values:
        changes["trash_grace_days"] = int(values["delete.trash_grace_days"])
    if "delete.allowed_owners" in values:
        owners = values["delete.allowed_owners"]
        if not all(isinstance(o, str) for o in owners):
            raise ConfigError(f"{origin}: delete.allowed_owners is a list of user names")
        changes["allowed_owners"] = tuple(owners)
    if "ui.read_only" in values:
        changes["read_only"] = values["ui.read_only"]
    keys = data.get("keys")
    if keys:
        changes["keys"] = {**settings.keys, **keys}
    return replace(settings, **changes)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a `ConfigError`."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _image_map(value: Any, where: str) -> dict[str, str]:
    """task_container_defaults.image: a string for all, or a map per environment."""
    if isinstance(value, str):
        return {env: value for env in ENVIRONMENTS}
    if isinstance(value, dict):
        images = {}
        for key, image in value.items():
            # Older releases call the CUDA entry "gpu".
            env = "cuda" if key == "gpu" else key
            if env in ENVIRONMENTS and isinstance(image, str) and image.strip():
                images[env] = image.strip()
        return images
    raise ConfigError(f"{where}: task_container_defaults.image is neither a string nor a map")


def apply_determined(settings: Settings, path: Path, origin: str) -> Settings:
    """Add what Determined's master.yaml says about the image root and default images."""
    try:
        with path.open("rb") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return replace(settings, sources=(*settings.sources, origin))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    caches = list(settings.caches)
    manager = data.get("resource_manager") or {}
    if isinstance(manager, dict):
        for key in ("singularity_image_root", "apptainer_image_root"):
            root = manager.get(key)
            if isinstance(root, str) and root.strip():
                caches.append(
                    make_cache("singularity", root.strip(), f"{origin} resource_manager.{key}")
                )
    defaults = dict(settings.default_images)
    origins = dict(settings.default_origins)
    tcd = data.get("task_container_defaults") or {}
    if isinstance(tcd, dict) and "image" in tcd:
        for env, image in _image_map(tcd["image"], str(path)).items():
            # An explicit imgcache config setting outranks master.yaml.
            if env not in origins or origins[env] == origin:
                defaults[env] = image
                origins[env] = f"{origin} task_container_defaults.image"
    return replace(
        settings,
        caches=tuple(caches),
        default_images=defaults,
        default_origins=origins,
        sources=(*settings.sources, origin),
    )


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
    the file off (no config file, no master.yaml).
    """
    env = os.environ if env is None else env
    settings = Settings()
    config_path: Path | None = None
    if config is None and "IMGCACHE_CONFIG" in env:
        config = env["IMGCACHE_CONFIG"] or None
        if config is not None:
            config_path = find_config(config, env)
    else:
        config_path = find_config(config, env)
    if config_path is not None:
        settings = apply_toml(settings, read_toml(config_path), str(config_path))
    use_system_master = True
    if determined_config is None and "IMGCACHE_DETERMINED_CONFIG" in env:
        determined_config = env["IMGCACHE_DETERMINED_CONFIG"] or None
        use_system_master = False
    if determined_config:
        master = Path(determined_config)
        if not master.is_file():
            raise ConfigError(f"--determined-config {determined_config}: no such file")
        settings = apply_determined(settings, master, str(master))
    elif use_system_master and os.path.isfile(DETERMINED_CONFIG):
        settings = apply_determined(settings, Path(DETERMINED_CONFIG), DETERMINED_CONFIG)
    extra = [parse_cache_arg(arg) for arg in cache_args]
    return replace(settings, caches=dedupe([*settings.caches, *extra]))
