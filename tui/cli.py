"""The `imgcache` command: the app with no subcommand, scriptable subcommands otherwise.

Every subcommand prints plain lines when stdout is not a terminal and JSON with
`--json`; errors are one line on stderr and a non-zero exit status, never a
traceback (pass `--debug` for one).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import tempfile
import time
from collections.abc import Sequence

from imgcache.backends.inventory.findings import ORDER, VOCABULARY
from imgcache.tui import (
    cli_about,
    cli_completion,
    cli_config,
    cli_jobs,
    cli_maintenance,
    cli_signals,
    cli_trash,
)
from imgcache.tui.cli_common import (
    EXIT_ERROR,
    EXIT_OK,
    Fail,
    Formatter,
    add_common_options,
    add_only_option,
    check_keys,
    console,
    load_settings,
    print_json,
    scan_inventory,
    usage,
)
from imgcache.tui.format import printable

_DESCRIPTION = """\
imgcache shows the shared container image cache of a cluster: Apptainer/Singularity
SIF files, enroot squashfs files and Podman archives, with their references, sizes,
compression, age and findings, and whether each environment's default image is there.

With no command it opens the app on the configured caches."""

_EPILOG = """\
caches come from --cache KIND:PATH, the config files (/etc/imgcache/config.toml,
$XDG_CONFIG_DIRS/imgcache/config.toml, then $XDG_CONFIG_HOME/imgcache/config.toml,
merged key by key; `imgcache config --show` shows the result) and Determined's
/etc/determined/master.yaml (singularity_image_root). KIND is singularity (or
apptainer), enroot or podman.

examples:
  imgcache --demo                                 open the app on a demo cache
  imgcache list --only --cache enroot:/shared/e   list that cache alone
  imgcache list --json --finding stale            stale images, for a script
  imgcache defaults                               which default images are cached
"""
_EPILOG += "\n" + cli_about.exit_status_epilog()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `imgcache` command."""
    parser = argparse.ArgumentParser(
        prog="imgcache", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=Formatter
    )
    add_common_options(parser, suppress=False)
    parser.add_argument("--version", action=cli_about.VersionAction)
    parser.add_argument(
        "--demo",
        action="store_true",
        help="create a demo cache in a temporary directory (or reuse it) and open the app on it",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    p = sub.add_parser(
        "list",
        help="list every image in the caches",
        description="List every file in the configured caches with its reference, format, "
        "compression, size, age and findings.",
        epilog="findings: " + ", ".join(ORDER),
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
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
    add_only_option(p)
    p.set_defaults(handler=cmd_list, writes=False)

    p = sub.add_parser(
        "defaults",
        help="show the default image of each environment and where it is cached",
        description="Show the default image of each environment (CPU, NVIDIA, AMD) and, for "
        "each configured cache, whether it is present and where.",
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--profiles", action="store_true", help="list the shipped profiles of defaults")
    add_only_option(p)
    p.set_defaults(handler=cmd_defaults, writes=False)

    p = sub.add_parser(
        "findings",
        help="explain each finding",
        description="What each finding means and what to do about it.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_findings, writes=False)

    p = sub.add_parser(
        "demo",
        help="write a demo cache",
        description="Write a demo cache: three caches of sparse files with real headers.",
    )
    demo_sub = p.add_subparsers(dest="demo_command", metavar="ACTION", required=True)
    d = demo_sub.add_parser("create", help="write the demo cache into DIR")
    d.add_argument("dir", metavar="DIR")
    # A new directory of sparse files, not a cache: read-only does not stop it.
    d.set_defaults(handler=cmd_demo, writes=False)
    cli_jobs.register(sub)
    cli_maintenance.register(sub)
    cli_trash.register(sub)
    cli_config.register(sub)
    cli_completion.register(sub)
    return parser


def cmd_list(args: argparse.Namespace) -> int:
    """`imgcache list`."""
    from imgcache.backends.inventory.export import image_dict
    from imgcache.tui.listing import print_images

    inventory = scan_inventory(args)
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
        print_json([image_dict(i) for i in images])
    else:
        print_images(console(), inventory, images, time.time())
    return EXIT_OK


def cmd_defaults(args: argparse.Namespace) -> int:
    """`imgcache defaults`."""
    from imgcache.backends.inventory.defaults import choose_profile, load_profiles
    from imgcache.backends.inventory.export import defaults_dict, profile_dict
    from imgcache.tui.listing import print_defaults, print_profiles

    if args.profiles:
        current = choose_profile(load_settings(args)).name
        if args.json:
            print_json([profile_dict(p) for p in load_profiles().values()])
        else:
            print_profiles(console(), current)
        return EXIT_OK
    inventory = scan_inventory(args)
    if args.json:
        print_json(defaults_dict(inventory))
    else:
        print_defaults(console(), inventory)
    return EXIT_OK


def cmd_findings(args: argparse.Namespace) -> int:
    """`imgcache findings`: the vocabulary."""
    if args.json:
        print_json(
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
    from imgcache.backends.demo import create_demo

    try:
        config = create_demo(args.dir, time.time())
    except OSError as exc:
        raise Fail(f"cannot write the demo into {args.dir}: {exc.strerror or exc}") from None
    shown = printable(str(config))
    print(f"demo cache written to {printable(os.path.dirname(config))}")
    print(f"list it:  imgcache list --config {shown}")
    print(f"open it:  imgcache --config {shown}")
    return EXIT_OK


def demo_dir() -> str:
    """Where `imgcache --demo` keeps its demo cache (reused between runs).

    Without `XDG_RUNTIME_DIR` that is a predictable name in the shared temp
    directory, where another user could have put a link or a directory of theirs:
    the demo is written only into a directory of this user's that nobody else
    can enter, made here if missing.
    """
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = os.path.join(base, f"imgcache-demo-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise Fail(
            f"{printable(path)} is not a private directory of yours (a link, another "
            "user's, or open to others): remove it, or set XDG_RUNTIME_DIR"
        )
    return path


def has_terminal() -> bool:
    """Whether stdin and stdout are a terminal, which the app draws on and reads keys from.

    Without one (a script, cron, `| cat`) the app would draw into a pipe and never
    read a key - one core spinning for hours; the command says so at once instead.
    """
    return sys.stdin.isatty() and sys.stdout.isatty()


def cmd_app(args: argparse.Namespace) -> int:
    """`imgcache` with no command: the app (it needs a terminal, and says so at once)."""
    if not has_terminal():
        raise usage("the app needs a terminal; for scripts use `imgcache list`/`--json`")
    if args.demo:
        from imgcache.backends.demo import create_demo

        config = create_demo(demo_dir(), time.time())
        args.config = str(config)
    settings = load_settings(args)  # with --read-only, settings.read_only is set
    try:
        from imgcache.tui.app import run_app
    except ImportError as exc:
        raise Fail(f"the app cannot start: {exc}") from None
    check_keys(settings)
    return run_app(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `imgcache` command; returns the exit status.

    SIGTERM and SIGHUP clean up as Ctrl-C does and exit 128 + signal (`cli_signals`).
    """
    cli_signals.install()
    try:
        return cli_signals.exit_status(_main(argv))
    finally:
        cli_signals.uninstall()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    cli_completion.autocomplete(parser)  # a shell's TAB: answers and exits
    args = parser.parse_args(argv)
    for name, empty in (("cache", []), ("config", None), ("determined_config", None)):
        if not hasattr(args, name):
            setattr(args, name, empty)
    debug = getattr(args, "debug", False)
    handler = getattr(args, "handler", cmd_app)
    try:
        return handler(args)
    except Fail as exc:
        print(f"imgcache: {printable(str(exc))}", file=sys.stderr)
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
            f"imgcache: unexpected error: {type(exc).__name__}: {printable(str(exc))}\n"
            "imgcache: run again with --debug for a traceback, and please report it",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
