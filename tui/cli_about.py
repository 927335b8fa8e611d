"""What the `imgcache` command says about itself: its version and its exit statuses.

`--version` prints `imgcache X.Y.Z` from the installed distribution's metadata
(`imgcache.backends.version`), looked up only when asked. The exit statuses are
written once, here, and shown by `imgcache --help` (the epilog) and the man page
(`imgcache.tui.manpage`, its EXIT STATUS section).
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from typing import Any

from imgcache.backends.version import version

#: Each exit status and what it means, in the order `--help` and the man page list them.
EXIT_STATUSES: tuple[tuple[str, str], ...] = (
    ("0", "success"),
    (
        "1",
        "a failure: a job failed or was cancelled, a file was refused or could not be "
        "changed, or the question was answered no",
    ),
    (
        "2",
        "a usage or configuration error (a bad option or config value, a missing cache "
        "root), the app started without a terminal, a question with no terminal to ask "
        "on and no --yes, or a command that writes refused as read-only",
    ),
    ("130", "interrupted by Ctrl-C: jobs cancelled, their tools killed, temp files removed"),
    ("129, 143", "stopped by SIGHUP or SIGTERM, after the same cleanup as Ctrl-C"),
)


def exit_status_epilog(width: int = 79) -> str:
    """The exit statuses as a `--help` epilog paragraph, wrapped to `width` (the
    epilog is printed as written, so it comes wrapped)."""
    lines = ["exit status:"]
    for code, meaning in EXIT_STATUSES:
        lines.append(
            textwrap.fill(
                meaning,
                width,
                initial_indent=f"  {code:<9} ",
                subsequent_indent=" " * 12,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines) + "\n"


class VersionAction(argparse.Action):
    """`--version`: print `imgcache X.Y.Z` and exit 0 (argparse's own needs the string
    when the parser is built; this reads the metadata only when the option is given)."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str = argparse.SUPPRESS,
        default: Any = argparse.SUPPRESS,
        help: str = "print imgcache's version and exit",
    ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        """Print the version on stdout, as `--help` prints, and leave."""
        print(f"imgcache {version()}")
        parser.exit()
