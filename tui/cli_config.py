"""`imgcache config --show`: the merged settings and where each value came from.

The text form is a TOML file an admin could copy, each value followed by a comment
naming its source: a config file, `default`, master.yaml (with the key), the
profile of defaults, or `--cache`. The JSON form carries the same. The command
checks everything the app would check before it starts, `[keys]` included, so it
doubles as a check of a config file (exit status 2 on a mistake).
"""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from imgcache.backends.config import SETTINGS, Settings, shown
from imgcache.tui.cli_common import (
    EXIT_OK,
    Formatter,
    add_common_options,
    check_keys,
    load_settings,
    print_json,
)

DEFAULT = "default"


def register(sub: Any) -> None:
    """Add the `config` subcommand to the `imgcache` subparsers `sub`."""
    p = sub.add_parser(
        "config",
        help="show the merged configuration and where each value came from",
        description="Show the settings imgcache would run with, merged from the site and\n"
        "user config files (or --config), master.yaml and --cache, each with its source.\n"
        "Every value is checked as the app checks it, [keys] included; exit status 2\n"
        "and one line naming the file and the setting on a mistake.",
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
    p.add_argument(
        "--show", action="store_true", help="print the merged settings (what the command does)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_config, writes=False)


def _value(key: str, settings: Settings) -> Any:
    """The value of a `section.name` setting as the config would write it."""
    setting = SETTINGS[key]
    value = getattr(settings, setting.attr) if setting.attr else None
    if key.startswith("permissions."):
        return f"{value:04o}"
    if key == "jobs.squash_options":
        return shlex.join(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def report(settings: Settings) -> dict[str, Any]:
    """The merged settings: each value with its origin, as `config --show --json` prints."""
    from imgcache.backends.inventory.defaults import resolve_defaults

    profile, images = resolve_defaults(settings)
    sections: dict[str, dict[str, dict[str, Any]]] = {}
    for key, setting in SETTINGS.items():
        table = sections.setdefault(setting.section, {})
        if key == "defaults.profile":
            table["profile"] = {
                "value": profile.name,
                "origin": settings.origins.get(key, DEFAULT),
            }
        elif setting.attr is not None:
            table[setting.name] = {
                "value": _value(key, settings),
                "origin": settings.origins.get(key, DEFAULT),
            }
    for image in images:
        sections["defaults"][image.env] = {"value": image.value, "origin": image.origin}
    return {
        "sources": list(settings.sources),
        "cache": [
            {"kind": c.kind.value, "path": c.path, "origin": c.origin} for c in settings.caches
        ],
        "settings": sections,
        "keys": {
            binding_id: {"value": keys, "origin": settings.origins.get(f"keys.{binding_id}")}
            for binding_id, keys in settings.keys.items()
        },
    }


def _toml(value: Any) -> str:
    # JSON strings, numbers, booleans and arrays of strings are also TOML.
    return json.dumps(value, ensure_ascii=False)


def _line(name: str, entry: dict[str, Any]) -> str:
    text = f"{name} = {_toml(entry['value'])}"
    return f"{text:<44} # {shown(str(entry['origin']))}"


def render(data: dict[str, Any]) -> str:
    """The report as commented TOML."""
    lines = ["# files read, in order (later ones override earlier ones):"]
    lines += [f"#   {shown(s)}" for s in data["sources"]] or ["#   none"]
    for cache in data["cache"]:
        lines += ["", "[[cache]]", _line("kind", {**cache, "value": cache["kind"]})]
        lines.append(_line("path", {**cache, "value": cache["path"]}))
    for section, table in data["settings"].items():
        lines += ["", f"[{section}]"]
        lines += [_line(name, entry) for name, entry in table.items()]
    if data["keys"]:
        lines += ["", "[keys]"]
        lines += [_line(name, entry) for name, entry in data["keys"].items()]
    return "\n".join(lines)


def cmd_config(args: argparse.Namespace) -> int:
    """`imgcache config [--show] [--json]`."""
    settings = load_settings(args)
    check_keys(settings)
    data = report(settings)
    if getattr(args, "read_only", False):
        data["settings"]["ui"]["read_only"]["origin"] = "--read-only"
    if args.json:
        print_json(data)
    else:
        print(render(data))
    return EXIT_OK
