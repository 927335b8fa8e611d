"""What Determined's master.yaml says: the image root and the default images, per pool too.

`resource_manager.singularity_image_root` (or `apptainer_image_root`) becomes a
singularity cache. `task_container_defaults.image` gives the cluster's default images,
as Determined reads it (its `RuntimeItem`): a string for every environment, or a map
with `cpu`, `cuda` and `rocm` (`gpu` is CUDA's name before Determined 0.17.6, read only
when `cuda` is absent or empty). Each entry of `resource_pools` (named by `pool_name`)
may have a `task_container_defaults` of its own that Determined applies on top of the
cluster's, field by field: its `image` entries replace the cluster's environment by
environment (`PoolImages`).

Keys of `task_container_defaults` that name no image (`environment_variables`,
`pod_spec`, `force_pull_image`, `registry_auth`, ...) are Determined's business and not
read. Whatever the file says about images that imgcache does not read becomes one line
in `Master.notes` instead of silence: an `image` that is neither a string nor a map, an
environment key other than those above (`tpu`), a value that is no string, a pool
without a name, per-partition images (`resource_manager.partition_overrides`) and the
pools of `additional_resource_managers`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imgcache.backends.config.files import decode, one_line, read_bytes
from imgcache.backends.config.model import (
    ENVIRONMENTS,
    CacheSpec,
    ConfigError,
    PoolImages,
    make_cache,
    shown,
)

#: The keys of an `image` map and the environment each names.
ENV_KEYS = {"cpu": "cpu", "cuda": "cuda", "gpu": "cuda", "rocm": "rocm"}
#: What a note says imgcache did with a value it cannot read.
IGNORED = "not read, so the defaults shown may not be the ones jobs get"


@dataclass(slots=True)
class Master:
    """The parts of one master.yaml imgcache uses."""

    origin: str
    caches: list[CacheSpec] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)
    """Environment -> default image."""
    image_origin: str = ""
    """Where `images` came from: the file and `task_container_defaults.image`."""
    pools: list[PoolImages] = field(default_factory=list)
    """The resource pools, in the file's order (a pool without images too)."""
    notes: list[str] = field(default_factory=list)
    """What the file says about default images that imgcache does not read."""


def _yaml_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        where = ""
        if exc.problem_mark is not None:
            where = f" (line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1})"
        context = f"{exc.context}: " if exc.context else ""
        return one_line(f"{context}{exc.problem}{where}")
    return one_line(str(exc))


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; every failure is one line naming the file."""
    text = decode(read_bytes(path), path, "YAML")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown(str(path))}: not valid YAML: {_yaml_error(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{shown(str(path))}: not valid YAML: nested too deeply") from None


def _kind(value: Any) -> str:
    """What a YAML value is, for a note."""
    if isinstance(value, bool):  # before int: True is an int too
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, datetime.date):
        return "a date"
    return f"a {type(value).__name__}"


def _image_map(value: Any, where: str, notes: list[str]) -> dict[str, str]:
    """An `image` value as environment -> image; `where` is "FILE: KEY" for notes."""
    if value is None:
        return {}
    if isinstance(value, str):
        return dict.fromkeys(ENVIRONMENTS, value.strip()) if value.strip() else {}
    if not isinstance(value, dict):
        notes.append(f"{where}: {_kind(value)}, neither a string nor a map; {IGNORED}")
        return {}
    cuda = value.get("cuda")
    images = {}
    for key, image in value.items():
        env = ENV_KEYS.get(key) if isinstance(key, str) else None
        if env is None:
            notes.append(
                f"{where}.{shown(str(key))}: not an environment imgcache knows "
                "(cpu, cuda, rocm); its image is not shown"
            )
        elif key == "gpu" and isinstance(cuda, str) and cuda.strip():
            continue  # Determined reads `gpu` only when `cuda` says nothing
        elif image is not None and not isinstance(image, str):
            notes.append(f"{where}.{key}: {_kind(image)}, not an image reference; {IGNORED}")
        elif image is not None and image.strip():
            images[env] = image.strip()
    return images


def _names_image(block: Any) -> bool:
    """Whether a mapping's `task_container_defaults` sets an `image`."""
    tcd = block.get("task_container_defaults") if isinstance(block, dict) else None
    return isinstance(tcd, dict) and tcd.get("image") is not None


def _tcd_images(tcd: Any, key: str, name: str, notes: list[str]) -> dict[str, str]:
    """The images one `task_container_defaults` (at `key` in file `name`) names."""
    if tcd is None:
        return {}
    if not isinstance(tcd, dict):
        notes.append(f"{name}: {key}: {_kind(tcd)}, not a map; {IGNORED}")
        return {}
    return _image_map(tcd.get("image"), f"{name}: {key}.image", notes)


def _pools(data: dict[str, Any], name: str, notes: list[str]) -> list[PoolImages]:
    """`resource_pools`: each named pool with the images it sets."""
    entries = data.get("resource_pools")
    if entries is None:
        return []
    if not isinstance(entries, list):
        notes.append(f"{name}: resource_pools: {_kind(entries)}, not a list; {IGNORED}")
        return []
    pools: list[PoolImages] = []
    for i, entry in enumerate(entries):
        pool = entry.get("pool_name") if isinstance(entry, dict) else None
        if not isinstance(pool, str) or not pool.strip() or pool in {p.name for p in pools}:
            if _names_image(entry):
                # Determined itself refuses a pool without a name, or a name used twice.
                named = isinstance(pool, str) and pool.strip()
                problem = "a pool_name used before" if named else "no pool_name"
                notes.append(f"{name}: resource_pools[{i}]: {problem}; its images are not shown")
            continue
        key = f"resource_pools[{i}] (pool {shown(pool)}) task_container_defaults"
        images = _tcd_images(entry.get("task_container_defaults"), key, name, notes)
        pools.append(PoolImages(pool, images, f"{name} {key}.image"))
    return pools


def _unread(data: dict[str, Any], manager: Any, name: str, notes: list[str]) -> None:
    """Note the images set where imgcache does not look: partitions, other managers."""
    overrides = manager.get("partition_overrides") if isinstance(manager, dict) else None
    if not isinstance(overrides, dict):
        overrides = {}
    for partition, entry in overrides.items():
        if _names_image(entry):
            notes.append(
                f"{name}: resource_manager.partition_overrides.{shown(str(partition))}"
                ".task_container_defaults.image: per-partition images are not read; "
                "jobs on that partition may get another image than shown"
            )
    managers = data.get("additional_resource_managers")
    for i, extra in enumerate(managers if isinstance(managers, list) else ()):
        pools = extra.get("resource_pools") if isinstance(extra, dict) else None
        for j, pool in enumerate(pools if isinstance(pools, list) else ()):
            if _names_image(pool):
                notes.append(
                    f"{name}: additional_resource_managers[{i}].resource_pools[{j}]"
                    ".task_container_defaults.image: pools of additional resource managers "
                    "are not read; their images are not shown"
                )


def read_master(path: Path) -> Master:
    """The image root, default images, pools and notes one master.yaml gives."""
    origin = str(path)
    name = shown(origin)
    data = load_yaml(path)
    master = Master(origin)
    if data is None:
        return master
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping at the top level")
    manager = data.get("resource_manager") or {}
    if isinstance(manager, dict):
        for key in ("singularity_image_root", "apptainer_image_root"):
            root = manager.get(key)
            if isinstance(root, str) and root.strip():
                where = f"{name} resource_manager.{key}"
                master.caches.append(make_cache("singularity", root.strip(), where))
    tcd = data.get("task_container_defaults")
    master.images = _tcd_images(tcd, "task_container_defaults", name, master.notes)
    if master.images:
        master.image_origin = f"{name} task_container_defaults.image"
    master.pools = _pools(data, name, master.notes)
    _unread(data, manager, name, master.notes)
    return master
