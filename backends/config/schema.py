"""Every setting of the TOML config: its section, name, type and range.

`check_file` turns one parsed file into a `Layer` of checked values, refusing
unknown sections and keys (naming the nearest valid one), wrong types and values
out of range, each with one line that starts with the file and the key. Layers are
merged key by key in `loading`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any

from imgcache.backends.config import values as v
from imgcache.backends.config.model import ENVIRONMENTS, CacheSpec, ConfigError, make_cache


@cache
def profile_names() -> list[str]:
    """The names of the shipped defaults profiles (data/profiles.toml), newest first."""
    text = resources.files("imgcache.backends").joinpath("data/profiles.toml").read_text("utf-8")
    profiles = tomllib.loads(text)["profiles"]
    return sorted(profiles, key=lambda name: -int(profiles[name]["order"]))


@dataclass(frozen=True, slots=True)
class Setting:
    """One key of the config: where it lives, what it holds, which field it sets."""

    section: str
    name: str
    kind: v.Kind
    attr: str | None
    """The `Settings` field it sets; None for the default images (`default_images`)."""

    @property
    def key(self) -> str:
        """`section.name`, as messages and `config --show` name it."""
        return f"{self.section}.{self.name}"


def _settings() -> dict[str, Setting]:
    image = v.image()
    table = [
        Setting("defaults", "profile", v.name("defaults profile", profile_names), "profile"),
        *(Setting("defaults", env, image, None) for env in ENVIRONMENTS),
        Setting("findings", "stale_days", v.integer(1, 36500, "days"), "stale_days"),
        Setting("scan", "workers", v.integer(1, 64), "scan_workers"),
        Setting("watch", "poll_interval", v.seconds(0.5, 3600), "poll_interval"),
        Setting("watch", "rescan_interval", v.seconds(5, 86400), "rescan_interval"),
        Setting("watch", "polling", v.boolean(), "force_polling"),
        Setting(
            "permissions",
            "file_mode",
            v.mode(0o400, "the owner could not read the images imgcache writes", "0644"),
            "file_mode",
        ),
        Setting(
            "permissions",
            "dir_mode",
            v.mode(0o700, "the owner could not enter or write the directories it creates", "0755"),
            "dir_mode",
        ),
        Setting("jobs", "concurrency", v.integer(1, 64), "job_concurrency"),
        Setting("jobs", "backend", v.choice("auto", "runtime", "builtin"), "job_backend"),
        Setting("jobs", "squash_options", v.command_options(), "squash_options"),
        Setting("delete", "trash_grace_days", v.integer(1, 3650, "days"), "trash_grace_days"),
        Setting("delete", "allowed_owners", v.user_names(), "allowed_owners"),
        Setting("ui", "read_only", v.boolean(), "read_only"),
    ]
    return {s.key: s for s in table}


#: Every setting by `section.name`, in the order the README and `config --show` list them.
SETTINGS = _settings()
#: The sections, `[[cache]]` and `[keys]` included.
SECTIONS = ("cache", *dict.fromkeys(s.section for s in SETTINGS.values()), "keys")
KEY_KIND = v.key_list()


@dataclass(slots=True)
class Layer:
    """The checked contents of one config file."""

    origin: str
    values: dict[str, Any] = field(default_factory=dict)
    """`section.name` -> checked value."""
    caches: list[CacheSpec] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    """Binding id -> keys, as written (the app checks the key names)."""


def _section_names(section: str) -> list[str]:
    return [s.name for s in SETTINGS.values() if s.section == section]


def check_file(data: Mapping[str, Any], origin: str) -> Layer:
    """Check one parsed config file; the first problem is a `ConfigError`."""
    layer = Layer(origin)
    for section, table in data.items():
        if section == "cache":
            layer.caches = _caches(table, origin)
            continue
        if section not in SECTIONS:
            raise ConfigError(
                f"{origin}: [{section}]: unknown section{v.nearest(section, list(SECTIONS))}"
            )
        if not isinstance(table, dict):
            raise ConfigError(
                f"{origin}: {section}: expected a table [{section}], not {v.toml_type(table)}"
            )
        for name, value in table.items():
            key = f"{section}.{name}"
            try:
                if section == "keys":
                    layer.keys[name] = KEY_KIND.convert(value)
                    continue
                setting = SETTINGS.get(key)
                if setting is None:
                    raise v.Invalid(
                        f"unknown setting in [{section}]{v.nearest(name, _section_names(section))}"
                    )
                layer.values[key] = setting.kind.convert(value)
            except v.Invalid as exc:
                raise ConfigError(f"{origin}: {key}: {exc}") from None
    return layer


def _caches(raw: Any, origin: str) -> list[CacheSpec]:
    if not isinstance(raw, list):
        raise ConfigError(
            f'{origin}: cache: caches are written [[cache]] with kind = "..." and path = "..."'
        )
    caches = []
    for i, entry in enumerate(raw, 1):
        where = f"{origin}: [[cache]] #{i}"
        if not isinstance(entry, dict):
            raise ConfigError(f'{where}: expected a table with kind = "..." and path = "..."')
        for name in entry:
            if name not in ("kind", "path"):
                raise ConfigError(
                    f"{where}: unknown key {name!r}{v.nearest(name, ['kind', 'path'])}"
                )
        for name in ("kind", "path"):
            if name not in entry:
                raise ConfigError(f'{where}: needs kind = "..." and path = "..." ({name} missing)')
            if not isinstance(entry[name], str):
                raise ConfigError(
                    f"{where}: {name}: expected a string, not {v.toml_type(entry[name])}"
                )
        # Checked under the entry's name, so a bad kind or path says which entry.
        spec = make_cache(entry["kind"], entry["path"], where)
        caches.append(replace(spec, origin=origin))
    return caches
