"""What every `imgcache` subcommand shares: options, settings, errors, output.

The command modules (`cli`, `cli_jobs`, `cli_maintenance`, `cli_trash`) import from
here rather than from each other, so there is one `Fail` class whatever module runs
as `__main__`, and each subcommand names its handler with `set_defaults(handler=...)`.

Each subcommand also says whether it writes (`set_defaults(writes=...)`: a bool, or
a function of the parsed arguments, e.g. gc writes unless `--dry-run`). With
`--read-only`, or `[ui] read_only = true` in the config, `load_settings` - the first
thing every command that touches a cache does - refuses a command that writes,
with one line and exit status 2, before anything is opened for writing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

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
    group.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="imgcache config file, read instead of the site and user files",
    )
    group.add_argument(
        "--determined-config",
        metavar="FILE",
        default=default,
        help="Determined master config (default /etc/determined/master.yaml if present)",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="refuse every command that writes; the app offers no action that writes",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show a traceback when something fails",
    )


def add_only_option(parser: argparse.ArgumentParser) -> None:
    """`--only`: the caches named with `--cache` alone, not the configured ones too."""
    parser.add_argument(
        "--only",
        action="store_true",
        help="only the caches named with --cache KIND:PATH, not the configured ones",
    )


def only_named_caches(
    args: argparse.Namespace, settings: config_mod.Settings
) -> config_mod.Settings:
    """`settings` with just the caches `--cache` names (for `--only`); a usage error
    when none is named. The rest (defaults, findings) stays as configured."""
    from dataclasses import replace

    if not args.cache:
        raise usage(f"{command_name(args)} --only: name the caches with --cache KIND:PATH")
    named = [config_mod.parse_cache_arg(arg, config_mod.CACHE_OPTION) for arg in args.cache]
    return replace(settings, caches=config_mod.dedupe(named))


def writes(args: argparse.Namespace) -> bool:
    """Whether the parsed command would write (its `writes` default; see the module)."""
    declared: bool | Callable[[argparse.Namespace], bool] = getattr(args, "writes", False)
    return declared(args) if callable(declared) else bool(declared)


def command_name(args: argparse.Namespace) -> str:
    """The command as the admin typed it, for messages: `rm`, `trash --restore`."""
    name = getattr(args, "command", None) or "imgcache"
    extra = getattr(args, "shown_as", None)
    return extra(args) if callable(extra) else name


def refuse_read_only(args: argparse.Namespace, settings: config_mod.Settings) -> None:
    """Fail (exit 2) when a command that writes runs read-only; say where read-only came from."""
    if not writes(args):
        return
    if getattr(args, "read_only", False):
        why = "--read-only"
    elif settings.read_only:
        # The file that set it: with site and user files merged, not always the last read.
        origin = settings.origins.get("ui.read_only")
        why = f"[ui] read_only = true in {origin}" if origin else "[ui] read_only = true"
    else:
        return
    raise usage(f"read-only ({why}): {command_name(args)} would write; nothing was changed")


def load_settings(args: argparse.Namespace) -> config_mod.Settings:
    """The settings the options and config files give; a usage error if they are wrong,
    or if the command writes and imgcache is read-only (`refuse_read_only`)."""
    from dataclasses import replace

    try:
        settings = config_mod.load_settings(
            config=args.config,
            determined_config=args.determined_config,
            cache_args=args.cache or [],
        )
    except config_mod.ConfigError as exc:
        raise usage(str(exc)) from None
    refuse_read_only(args, settings)
    if getattr(args, "read_only", False):
        settings = replace(settings, read_only=True)
    return settings


def check_roots(settings: config_mod.Settings) -> None:
    """A usage error when no cache is configured or a root is missing or unreadable:
    one line per root, each escaped (a path is data)."""
    from imgcache.tui.format import printable

    problems = config_mod.check_cache_paths(settings.caches)
    for problem in problems[:-1]:
        print(f"imgcache: {printable(problem)}", file=sys.stderr)
    if problems:
        raise usage(problems[-1])


def check_keys(settings: config_mod.Settings) -> None:
    """Refuse a `[keys]` table with unknown ids, unknown key names or clashes (exit 2).

    Loads Textual (the key names are its own), so only the app and `config` call it.
    """
    from imgcache.tui.keymap import check_keymap

    try:
        check_keymap(settings)
    except config_mod.ConfigError as exc:
        raise usage(str(exc)) from None


def scan_inventory(args: argparse.Namespace) -> Inventory:
    """Scan the configured caches once; unreadable directories are warned about."""
    from imgcache.backends.inventory.catalog import open_catalog
    from imgcache.tui.format import printable

    settings = load_settings(args)
    if getattr(args, "only", False):
        settings = only_named_caches(args, settings)
    check_roots(settings)
    try:
        catalog = open_catalog(settings)
    except config_mod.ConfigError as exc:
        raise usage(str(exc)) from None
    inventory = catalog.scan()
    for problem in inventory.problems:
        print(f"imgcache: warning: {printable(problem)}", file=sys.stderr)
    return inventory


def console() -> Console:
    """A rich console for stdout; on a pipe it never wraps or colours."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, no_color=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Print `data` as indented JSON on stdout.

    An object names its writer, `"imgcache": {"version": "X.Y.Z"}` (a key added,
    none renamed); an array keeps its shape (`imgcache --version` says it there).
    """
    if isinstance(data, dict):
        from imgcache.backends.version import stamp

        data = {**data, "imgcache": stamp()}
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def plan_stream(args: argparse.Namespace) -> TextIO:
    """Where a plan for people goes: stdout, or stderr with `--json` (stdout is the JSON)."""
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def confirm(
    command: str, question: str, yes: bool, action: str, out: TextIO | None = None
) -> int | None:
    """None to go ahead; else the exit status: 2 without a terminal (and without
    `--yes`), 1 when the admin answers no. The question goes to `out` (stdout)."""
    out = sys.stdout if out is None else out
    if yes:
        return None
    if not sys.stdin.isatty():
        print(
            f"imgcache {command}: not a terminal; pass --yes to {action} without asking",
            file=sys.stderr,
        )
        return EXIT_USAGE
    out.write(f"{question} [y/N] ")
    out.flush()
    answer = sys.stdin.readline()
    if answer.strip().lower() in ("y", "yes"):
        return None
    print("nothing done", file=out)
    return EXIT_ERROR
