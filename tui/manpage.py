"""The man page, imgcache(1), written from the command's own argparse parser.

`./scripts/manpage` (`python -m imgcache.tui.manpage man/imgcache.1`) writes it;
the wheel installs it as `share/man/man1/imgcache.1`, and a test fails when the
committed page differs from what the parser gives now. Every option, choice,
description and epilog comes from `imgcache.tui.cli.build_parser`; the exit
statuses from `cli_about.EXIT_STATUSES`, the same lines `--help` shows. What
argparse does not know (files, environment) is written here.

Our own rather than argparse-manpage: that one leaves out every subcommand's
epilog (where `pull` explains `--to` and gives examples) and reflows example
blocks into one paragraph.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from imgcache.backends.version import version
from imgcache.tui.cli_about import EXIT_STATUSES

#: The page's title line after the name: what imgcache is, in one line.
SUMMARY = "see and keep the shared container image cache of an HPC cluster"
#: Options every command that reads the caches takes, before or after its name.
COMMON = frozenset({"--cache", "--config", "--determined-config", "--read-only", "--debug"})
#: The epilog paragraphs of the top-level parser that become sections of their own.
_SECTIONS = {"examples:": "EXAMPLES", "exit status:": None}  # None: rendered from the data

FILES = (
    ("/etc/imgcache/config.toml", "the site's config file (IMGCACHE_SYSTEM_CONFIG replaces it)"),
    (
        "$XDG_CONFIG_DIRS/imgcache/config.toml",
        "more site config files, /etc/xdg by default; an earlier directory overrides a later one",
    ),
    (
        "$XDG_CONFIG_HOME/imgcache/config.toml",
        "the user's config file (~/.config/imgcache/config.toml); it overrides the site's "
        "setting by setting, and its caches are added to the site's",
    ),
    (
        "/etc/determined/master.yaml",
        "Determined's master config: singularity_image_root becomes a singularity cache, "
        "task_container_defaults.image sets the default images",
    ),
    (
        "$XDG_STATE_HOME/imgcache/jobs/",
        "the log of every job (~/.local/state/imgcache/jobs/), the newest 200 kept",
    ),
)
ENVIRONMENT = (
    ("IMGCACHE_CONFIG", "a config file read alone, as --config; empty: no config file"),
    ("IMGCACHE_SYSTEM_CONFIG", "read in place of /etc/imgcache/config.toml; empty: skip it"),
    ("IMGCACHE_DETERMINED_CONFIG", "as --determined-config; empty: no master.yaml"),
    ("IMGCACHE_PASSWORD", "the registry password for pull --username"),
    ("IMGCACHE_TMPDIR", "scratch space for the builtin pull (default $TMPDIR, else /var/tmp)"),
    ("IMGCACHE_LOCK_TIMEOUT", "seconds a pull waits for another pull of the same image (600)"),
    ("IMGCACHE_NO_LOCKS", "1: no per-reference locks"),
    ("CONTAINERS_REGISTRIES_CONF", "registry mirrors, passed on to skopeo"),
    ("XDG_CONFIG_HOME, XDG_CONFIG_DIRS, XDG_STATE_HOME", "where the files above are"),
)
SEE_ALSO = "apptainer(1), enroot(1), podman-save(1), skopeo-copy(1), mksquashfs(1), unsquashfs(1)"


def escape(text: str) -> str:
    """`text` for roff: backslashes and dashes escaped (`\\-` copies as `-`), and a line
    that would start with a control character made plain text."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(f"\\&{line}" if line.startswith((".", "'")) else line
                     for line in text.split("\n"))  # fmt: skip


def bold(text: str) -> str:
    """`text` in bold (commands, options)."""
    return f"\\fB{escape(text)}\\fR"


def italic(text: str) -> str:
    """`text` in italics (what the admin fills in)."""
    return f"\\fI{escape(text)}\\fR"


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    # argparse's own rendering of an argument's metavar and of `%(default)s` in help.
    return argparse.HelpFormatter(parser.prog)


def _shown(action: argparse.Action) -> bool:
    return action.help != argparse.SUPPRESS and not isinstance(
        action, argparse._SubParsersAction | argparse._HelpAction
    )


def _args(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The value part of an argument as argparse's usage writes it (`KIND:PATH`, `[REF ...]`)."""
    default = action.dest.upper() if action.option_strings else action.dest
    return _formatter(parser)._format_args(action, default)


def synopsis(
    parser: argparse.ArgumentParser, name: str, *, skip: frozenset[str] = frozenset()
) -> str:
    """One synopsis line: `name`, its options, then its positional arguments."""
    parts = [bold(name)]
    positionals = []
    for action in parser._actions:
        if not _shown(action) or set(action.option_strings) & skip:
            continue
        if not action.option_strings:
            positionals.append(italic(_args(parser, action)))
            continue
        option = bold(action.option_strings[-1])
        if action.nargs != 0:
            option += " " + italic(_args(parser, action))
        many = "..." if isinstance(action, argparse._AppendAction) else ""
        parts.append(f"[{option}]{many}" if not action.required else option)
    return " ".join(parts + positionals)


def options(parser: argparse.ArgumentParser, *, skip: frozenset[str] = frozenset()) -> list[str]:
    """A tagged paragraph for each option and argument of `parser` (`skip`ped ones left out)."""
    lines: list[str] = []
    formatter = _formatter(parser)
    for action in parser._actions:
        if not _shown(action) or set(action.option_strings) & skip:
            continue
        if action.option_strings:
            tag = ", ".join(bold(o) for o in action.option_strings)
            if action.nargs != 0:
                tag += " " + italic(_args(parser, action))
        else:
            tag = italic(_args(parser, action))
        if not action.help:
            continue  # a bare positional (FILE, REF): the synopsis says it all
        lines += [".TP", tag, escape(formatter._expand_help(action))]
    return lines


def text(block: str | None) -> list[str]:
    """Help text as roff: prose is filled, indented lines (examples) are kept as written."""
    lines: list[str] = []
    for paragraph in (block or "").strip("\n").split("\n\n"):
        if not paragraph.strip():
            continue
        lines.append(".PP")
        kept: list[str] = []
        for line in paragraph.split("\n"):
            if line.startswith(" "):
                kept.append(line)
                continue
            lines += _kept(kept)
            kept = []
            lines.append(escape(line))
        lines += _kept(kept)
    return lines


def _kept(block: list[str]) -> list[str]:
    """Indented lines, no-fill, indented once."""
    if not block:
        return []
    indent = min(len(line) - len(line.lstrip(" ")) for line in block)
    return [".RS", ".nf", *(escape(line[indent:]) for line in block), ".fi", ".RE"]


def _split_epilog(epilog: str | None) -> tuple[str, dict[str, str]]:
    """The top-level epilog's prose, and its titled paragraphs (`examples:`) by title."""
    prose: list[str] = []
    titled: dict[str, str] = {}
    for paragraph in (epilog or "").strip("\n").split("\n\n"):
        head, _, rest = paragraph.partition("\n")
        if head in _SECTIONS:
            titled[head] = rest
        else:
            prose.append(paragraph)
    return "\n\n".join(prose), titled


def _subcommands(
    parser: argparse.ArgumentParser, prefix: str
) -> Iterator[tuple[str, argparse.ArgumentParser, str | None]]:
    """(full name, parser, one-line help) of every subcommand, nested ones after their parent."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            if helps.get(name) == argparse.SUPPRESS:
                continue
            full = f"{prefix} {name}"
            yield full, sub, helps.get(name)
            yield from _subcommands(sub, full)


def _has_subcommands(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def command_section(name: str, parser: argparse.ArgumentParser, summary: str | None) -> list[str]:
    """A subsection for one subcommand: synopsis, description, options, epilog."""
    takes_common = COMMON.issubset(o for a in parser._actions for o in a.option_strings)
    skip = COMMON | {"-h", "--help"} if takes_common else frozenset({"-h", "--help"})
    lines = [f'.SS "{escape(name)}"']
    if not _has_subcommands(parser):
        lines += [synopsis(parser, name, skip=COMMON if takes_common else frozenset())]
    lines += text(parser.description or summary)
    if takes_common:
        also = f"{bold('--read-only')} and {bold('--debug')} (see {bold('OPTIONS')})"
        lines += [".PP", f"It also takes the options that say where the caches are, {also}."]
    if any(_shown(a) and not set(a.option_strings) & skip for a in parser._actions):
        lines += options(parser, skip=skip)
    lines += text(parser.epilog)
    return lines


def _table(rows: Sequence[tuple[str, str]], tag: Callable[[str], str] = bold) -> list[str]:
    lines: list[str] = []
    for name, meaning in rows:
        lines += [".TP", tag(name), escape(meaning)]
    return lines


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole page, as roff."""
    if parser is None:
        from imgcache.tui.cli import build_parser

        parser = build_parser()
    prog = parser.prog
    prose, titled = _split_epilog(parser.epilog)
    lines = [
        f'.TH {prog.upper()} 1 "" "{prog} {escape(version())}" "User Commands"',
        ".nh",  # no hyphenation: option and file names are copied from the page
        ".ad l",
        ".SH NAME",
        f"{escape(prog)} \\- {escape(SUMMARY)}",
        ".SH SYNOPSIS",
        synopsis(parser, prog),
        ".br",
        f"{bold(prog)} {italic('COMMAND')} [{italic('OPTIONS')}] [{italic('ARGUMENTS')}]",
        ".SH DESCRIPTION",
        *text(parser.description),
        *text(prose),
        ".SH OPTIONS",
        *options(parser),
        ".SH COMMANDS",
    ]
    for name, sub, summary in _subcommands(parser, prog):
        lines += command_section(name, sub, summary)
    lines += ['.SH "EXIT STATUS"', *_table(EXIT_STATUSES)]
    lines += [".SH ENVIRONMENT", *_table(ENVIRONMENT)]
    lines += [".SH FILES", *_table(FILES, italic)]
    if "examples:" in titled:
        lines += [".SH EXAMPLES", *_kept(titled["examples:"].split("\n"))]
    lines += ['.SH "SEE ALSO"', escape(SEE_ALSO)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m imgcache.tui.manpage [FILE]`: write the page to FILE (or stdout)."""
    args = list(sys.argv[1:] if argv is None else argv)
    page = render()
    if args:
        Path(args[0]).write_text(page, encoding="utf-8")
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
