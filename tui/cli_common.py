"""What every `imgcache` subcommand shares: options, settings, errors, output.

The command modules (`cli`, `cli_jobs`, `cli_maintenance`) import from here rather
than from each other, so there is one `Fail` class whatever module runs as
`__main__`, and each subcommand names its handler with `set_defaults(handler=...)`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from imgcache.backends import config as config_mod

if TYPE_CHECKING:
    from rich.console import Console

    from imgcache.backends.inventory.catalog import Inventory

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


class Fail(Exception):
    """A failure already phrased for the user; `main()` prints it and exits with `code`."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def usage(message: str) -> Fail:
    """A usage error (exit status 2)."""
    return Fail(message, EXIT_USAGE)


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help with descriptions kept as written and options lined up."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def add_common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options every command takes, before or after the command name.

    Subcommands add them with `suppress`, so a value given before the command
    name is not reset by the subcommand's default.
    """
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("where the caches are")
    group.add_argument(
        "--cache",
        metavar="KIND:PATH",
        action="append",
        default=argparse.SUPPRESS if suppress else [],
        help="a cache to show (repeatable); KIND is singularity, apptainer, enroot or podman",
    )
    group.add_argument("--config", metavar="FILE", default=default, help="imgcache config file")
    group.add_argument(
        "--determined-config",
        metavar="FILE",
        default=default,
        help="Determined master config (default /etc/determined/master.yaml if present)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show a traceback when something fails",
    )


def load_settings(args: argparse.Namespace) -> config_mod.Settings:
    """The settings the options and config files give; a usage error if they are wrong."""
    try:
        return config_mod.load_settings(
            config=args.config,
            determined_config=args.determined_config,
            cache_args=args.cache or [],
        )
    except config_mod.ConfigError as exc:
        raise usage(str(exc)) from None


def scan_inventory(args: argparse.Namespace) -> Inventory:
    """Scan the configured caches once; unreadable directories are warned about."""
    from imgcache.backends.inventory.catalog import open_catalog

    settings = load_settings(args)
    try:
        catalog = open_catalog(settings)
    except config_mod.ConfigError as exc:
        raise usage(str(exc)) from None
    inventory = catalog.scan()
    for problem in inventory.problems:
        print(f"imgcache: warning: {problem}", file=sys.stderr)
    return inventory


def console() -> Console:
    """A rich console for stdout; on a pipe it never wraps or colours."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, no_color=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout."""
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")
