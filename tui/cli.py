"""The `imgcache` command: the app with no subcommand, scriptable subcommands otherwise.

Every subcommand prints plain lines when stdout is not a terminal and JSON with
`--json`; errors are one line on stderr and a non-zero exit status, never a
traceback (pass `--debug` for one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from backends import config as config_mod
from backends.findings import ORDER, VOCABULARY

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

_DESCRIPTION = """\
imgcache shows the shared container image cache of a cluster: Apptainer/Singularity
SIF files, enroot squashfs files and Podman archives, with their references, sizes,
compression, age and findings, and whether each environment's default image is there.

With no command it opens the app on the configured caches."""

_EPILOG = """\
caches come from --cache KIND:PATH, the config file
($XDG_CONFIG_HOME/imgcache/config.toml, else /etc/imgcache/config.toml) and
Determined's /etc/determined/master.yaml (singularity_image_root). KIND is
singularity (or apptainer), enroot or podman.

examples:
  imgcache --demo                                 open the app on a demo cache
  imgcache list --cache singularity:/shared/sif   list one cache
  imgcache list --json --finding stale            stale images, for a script
  imgcache defaults                               which default images are cached
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options every command takes, before or after the command name."""
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `imgcache` command."""
    parser = argparse.ArgumentParser(
        prog="imgcache", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=_Formatter
    )
    _common(parser, suppress=False)
    parser.add_argument(
        "--demo",
        action="store_true",
        help="create a demo cache in a temporary directory (or reuse it) and open the app on it",
    )
    parser.add_argument(
        "--read-only", action="store_true", help="open the app without any action that writes"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    p = sub.add_parser(
        "list",
        help="list every image in the caches",
        description="List every file in the configured caches with its reference, format, "
        "compression, size, age and findings.",
        epilog="findings: " + ", ".join(ORDER),
        formatter_class=_Formatter,
    )
    _common(p, suppress=True)
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per file")
    p.add_argument(
        "--finding",
        metavar="CODE",
        action="append",
        choices=ORDER,
        help="only files with this finding (repeatable: any of them)",
    )
    p.add_argument(
        "--sort",
        choices=("path", "ref", "size", "age"),
        default="path",
        help="sort order (default: path); size and age list the largest and oldest first",
    )

    p = sub.add_parser(
        "defaults",
        help="show the default image of each environment and where it is cached",
        description="Show the default image of each environment (CPU, NVIDIA, AMD) and, for "
        "each configured cache, whether it is present and where.",
        formatter_class=_Formatter,
    )
    _common(p, suppress=True)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--profiles", action="store_true", help="list the shipped profiles of defaults")

    p = sub.add_parser(
        "findings",
        help="explain each finding",
        description="What each finding means and what to do about it.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser(
        "demo",
        help="write a demo cache",
        description="Write a demo cache: three caches of sparse files with real headers.",
    )
    demo_sub = p.add_subparsers(dest="demo_command", metavar="ACTION", required=True)
    d = demo_sub.add_parser("create", help="write the demo cache into DIR")
    d.add_argument("dir", metavar="DIR")
    return parser


class _Fail(Exception):
    """A failure already phrased for the user."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def _settings(args: argparse.Namespace) -> config_mod.Settings:
    try:
        return config_mod.load_settings(
            config=args.config,
            determined_config=args.determined_config,
            cache_args=args.cache or [],
        )
    except config_mod.ConfigError as exc:
        raise _Fail(str(exc), EXIT_USAGE) from None


def _inventory(args: argparse.Namespace):  # noqa: ANN202 - avoids importing at start-up
    from backends.inventory import open_catalog

    settings = _settings(args)
    try:
        catalog = open_catalog(settings)
    except config_mod.ConfigError as exc:
        raise _Fail(str(exc), EXIT_USAGE) from None
    inventory = catalog.scan()
    for problem in inventory.problems:
        print(f"imgcache: warning: {problem}", file=sys.stderr)
    return inventory


def _console():  # noqa: ANN202
    from rich.console import Console

    # On a pipe, never wrap: one row per line, whatever the width.
    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, no_color=True, highlight=False, soft_wrap=True)


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def cmd_list(args: argparse.Namespace) -> int:
    """`imgcache list`."""
    from backends.export import image_dict
    from tui.listing import print_images

    inventory = _inventory(args)
    images = list(inventory.images)
    if args.finding:
        wanted = set(args.finding)
        images = [i for i in images if wanted & set(i.codes)]
    if args.sort == "size":
        images.sort(key=lambda i: -i.stat.size)
    elif args.sort == "age":
        images.sort(key=lambda i: i.stat.mtime)
    elif args.sort == "ref":
        images.sort(key=lambda i: (i.ref or "\uffff", i.path))
    if args.json:
        _print_json([image_dict(i) for i in images])
    else:
        print_images(_console(), inventory, images, time.time())
    return EXIT_OK


def cmd_defaults(args: argparse.Namespace) -> int:
    """`imgcache defaults`."""
    from backends.defaults import choose_profile, load_profiles
    from backends.export import defaults_dict, profile_dict
    from tui.listing import print_defaults, print_profiles

    if args.profiles:
        current = choose_profile(_settings(args)).name
        if args.json:
            _print_json([profile_dict(p) for p in load_profiles().values()])
        else:
            print_profiles(_console(), current)
        return EXIT_OK
    inventory = _inventory(args)
    if args.json:
        _print_json(defaults_dict(inventory))
    else:
        print_defaults(_console(), inventory)
    return EXIT_OK


def cmd_findings(args: argparse.Namespace) -> int:
    """`imgcache findings`: the vocabulary."""
    if args.json:
        _print_json(
            [
                {"code": t.code, "meaning": t.meaning, "advice": t.advice}
                for t in VOCABULARY.values()
            ]
        )
        return EXIT_OK
    for term in VOCABULARY.values():
        print(f"{term.code}\n  {term.meaning}\n  What to do: {term.advice}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """`imgcache demo create DIR`."""
    from backends.demo import create_demo

    try:
        config = create_demo(args.dir, time.time())
    except OSError as exc:
        raise _Fail(f"cannot write the demo into {args.dir}: {exc.strerror or exc}") from None
    print(f"demo cache written to {os.path.dirname(config)}")
    print(f"list it:  imgcache list --config {config}")
    print(f"open it:  imgcache --config {config}")
    return EXIT_OK


def demo_dir() -> str:
    """Where `imgcache --demo` keeps its demo cache (reused between runs)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(base, f"imgcache-demo-{os.getuid()}")


def cmd_app(args: argparse.Namespace) -> int:
    """`imgcache` with no command: the app."""
    if args.demo:
        from backends.demo import create_demo

        config = create_demo(demo_dir(), time.time())
        args.config = str(config)
    settings = _settings(args)
    if args.read_only:
        from dataclasses import replace

        settings = replace(settings, read_only=True)
    try:
        from tui.app import run_app
    except ImportError as exc:
        raise _Fail(f"the app cannot start: {exc}") from None
    return run_app(settings)


_COMMANDS = {
    "list": cmd_list,
    "defaults": cmd_defaults,
    "findings": cmd_findings,
    "demo": cmd_demo,
    None: cmd_app,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `imgcache` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, empty in (("cache", []), ("config", None), ("determined_config", None)):
        if not hasattr(args, name):
            setattr(args, name, empty)
    debug = getattr(args, "debug", False)
    try:
        return _COMMANDS[args.command](args)
    except _Fail as exc:
        print(f"imgcache: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `imgcache list | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if debug:
            raise
        print(
            f"imgcache: unexpected error: {type(exc).__name__}: {exc}\n"
            "imgcache: run again with --debug for a traceback, and please report it",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
