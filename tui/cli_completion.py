"""Shell completion for bash, zsh and fish, through argcomplete.

`imgcache completion SHELL` prints the script to install (argcomplete's own for
each shell). On TAB the shell runs `imgcache` itself with `_ARGCOMPLETE=1` and the
line so far in its environment; `autocomplete` (called by `imgcache.tui.cli` before
it parses anything) answers from the same parser the command uses, and exits.

What completes: subcommands and options (options once a `-` is typed), the
choices of options that have them (`--finding`, `--sort`, `--comp`, ...), cache
kinds for `--cache` and `--to` (then directories after `KIND:`), and image
references for `pull`, `add`, `rm` and `compress`, read from the names of the
files in the configured singularity and enroot caches (podman archives carry
their reference inside, which completion does not open). Names only: a directory
listing per cache directory (the file type from the listing, no header read), and
a budget of entries and time, so a TAB on a large cache on NFS stays quick. Nothing here imports
Textual, and argcomplete is imported only when completing or printing a script.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from imgcache.tui.cli_common import EXIT_OK, Formatter

#: The shells `imgcache completion` writes a script for.
SHELLS = ("bash", "zsh", "fish")
#: Cache kinds as `--cache` and `--to` take them.
KINDS = ("singularity", "apptainer", "enroot", "podman")
#: At most this many directory entries are looked at per TAB, over all caches.
MAX_ENTRIES = 20_000
#: And for at most this long: a slow network filesystem gets a partial answer.
BUDGET_SECONDS = 0.5
#: Determined's layout nests references as directories (`nvcr.io/nvidia/pytorch:tag`).
MAX_DEPTH = 6
#: Positional arguments that take an image reference (`rm` and `compress` also a path).
_REF_DESTS = frozenset({"refs", "ref", "targets"})

_EPILOG = """\
install it where your shell looks (site-wide as root, or for yourself):
  bash  imgcache completion bash > /etc/bash_completion.d/imgcache
        imgcache completion bash > ~/.local/share/bash-completion/completions/imgcache
  zsh   imgcache completion zsh > /usr/local/share/zsh/site-functions/_imgcache
        (or any directory in $fpath, before compinit runs)
  fish  imgcache completion fish > /etc/fish/completions/imgcache.fish
        imgcache completion fish > ~/.config/fish/completions/imgcache.fish
then start a new shell. Or, for this shell only: eval "$(imgcache completion bash)".
"""


def register(sub: Any) -> None:
    """Add the `completion` subcommand to the `imgcache` subparsers `sub`."""
    p = sub.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        description="Print the script that makes SHELL complete imgcache's commands, options,\n"
        "cache kinds and the image references in the configured caches.",
        epilog=_EPILOG,
        formatter_class=Formatter,
    )
    p.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash, zsh or fish")
    p.set_defaults(handler=cmd_completion, writes=False)


def script(shell: str) -> str:
    """The completion script for `shell`."""
    from argcomplete import shellcode

    return shellcode(["imgcache"], shell=shell)


def cmd_completion(args: argparse.Namespace) -> int:
    """`imgcache completion SHELL`."""
    sys.stdout.write(script(args.shell))
    return EXIT_OK


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's TAB and exit, when the shell asked for one; else do nothing."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    attach_completers(parser)
    # Options only once a `-` is typed: `imgcache <TAB>` lists the commands.
    argcomplete.autocomplete(parser, always_complete_options=False)


def attach_completers(parser: argparse.ArgumentParser) -> None:
    """Give `--cache`, `--to` and the reference arguments of every (sub)command theirs."""
    for action in _actions(parser):
        completer: Callable[..., list[str]] | None = None
        if "--cache" in action.option_strings:
            completer = complete_cache
        elif "--to" in action.option_strings:
            completer = complete_to
        elif not action.option_strings and action.dest in _REF_DESTS:
            completer = complete_ref
        if completer is not None:
            action.completer = completer  # type: ignore[attr-defined]


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every action of `parser` and of its subcommands, at any depth."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _actions(sub)


# --- completers: argcomplete calls them with keywords (prefix, parsed_args, ...) ----------


def complete_cache(prefix: str, **_: Any) -> list[str]:
    """`--cache KIND:PATH`: a kind with its colon, then directories."""
    if ":" in prefix:
        return _kind_dirs(prefix)
    return [f"{kind}:" for kind in KINDS]


def complete_to(prefix: str, **_: Any) -> list[str]:
    """`--to KIND[:PATH]`: a kind, or directories after `KIND:`."""
    if ":" in prefix:
        return _kind_dirs(prefix)
    return list(KINDS)


def _kind_dirs(prefix: str) -> list[str]:
    """`KIND:` followed by the directories that complete the path typed after it."""
    kind, _, typed = prefix.partition(":")
    if kind.lower() not in KINDS:
        return []
    return [f"{kind}:{path}" for path in _directories(typed)]


def _directories(typed: str) -> list[str]:
    """The directories whose path starts with `typed`, each ending in `/`."""
    head, _, start = typed.rpartition("/")
    base = (head or "/") if typed.startswith("/") else (head or ".")
    shown = f"{head}/" if head or typed.startswith("/") else ""
    found = []
    try:
        with os.scandir(os.path.expanduser(base)) as entries:
            for entry in entries:
                if not entry.name.startswith(start) or not entry.name.isprintable():
                    continue  # a control character is not sent to the terminal
                if entry.name.startswith(".") and not start.startswith("."):
                    continue
                if entry.is_dir():
                    found.append(f"{shown}{entry.name}/")
    except OSError:
        return []
    return sorted(found)


def complete_ref(prefix: str, parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    """Image references from the names of the files in the configured caches.

    A prefix that starts like a path (`/`, `.`, `~`) is a path (`rm` and `compress`
    take one): the shell's own file completion answers it.
    """
    if prefix.startswith(("/", ".", "~")):
        from argcomplete.completers import FilesCompleter

        return list(FilesCompleter()(prefix))
    try:
        caches = _configured_caches(parsed_args)
    except Exception:  # a config mistake is for the command to report, not for a TAB
        return []
    return sorted(cached_refs(caches, prefix))


def _configured_caches(parsed_args: argparse.Namespace | None) -> list[tuple[str, str]]:
    """(kind, root) of each cache the line so far and the config files configure."""
    from imgcache.backends import config as config_mod

    settings = config_mod.load_settings(
        config=getattr(parsed_args, "config", None),
        determined_config=getattr(parsed_args, "determined_config", None),
        cache_args=getattr(parsed_args, "cache", None) or [],
    )
    return [(cache.kind.value, cache.path) for cache in settings.caches]


def cached_refs(
    caches: list[tuple[str, str]], prefix: str = "", budget: float = BUDGET_SECONDS
) -> set[str]:
    """The references the cache files' names map to (singularity and enroot caches).

    Hidden names (imgcache's own folders and temp files, other tools' temps) and
    names of unfinished downloads are left out; links are never followed.
    """
    from imgcache.backends.inventory import caches as kinds
    from imgcache.backends.inventory.model import CacheKind

    deadline = time.monotonic() + budget
    seen = [0]
    found: set[str] = set()
    for kind_name, root in caches:
        kind = CacheKind(kind_name)
        if kind is CacheKind.PODMAN:
            continue
        for rel in _names(root, prefix if kind is CacheKind.SINGULARITY else "", seen, deadline):
            if kinds.looks_incomplete(rel.rpartition("/")[2]):
                continue
            ref, _ = kinds.ref_from_name(kind, rel)
            if ref is None:
                continue
            if kind is CacheKind.SINGULARITY:
                # As written in the layout: the path, without `.sif`, is the reference.
                ref = rel.removesuffix(".sif")
            found.add(ref)
    return found


def _names(root: str, prefix: str, seen: list[int], deadline: float) -> Iterator[str]:
    """Relative paths of the regular files under `root`, within the entry and time budget.

    With a `prefix` (singularity: references are paths), only directories on the
    way to it are entered.
    """
    stack = [("", 0)]
    while stack:
        rel_dir, depth = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel_dir) if rel_dir else root) as entries:
                for entry in entries:
                    seen[0] += 1
                    if seen[0] > MAX_ENTRIES or time.monotonic() > deadline:
                        return
                    # Hidden: imgcache's own folders and temps, other tools' temps. Not
                    # printable: no reference has a control character, and the shell
                    # would show it raw.
                    if entry.name.startswith(".") or not entry.name.isprintable():
                        continue
                    rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                    # d_type from the listing: no stat, and links are neither.
                    if entry.is_dir(follow_symlinks=False):
                        inside = f"{rel}/"
                        if depth < MAX_DEPTH and (
                            prefix.startswith(inside) or inside.startswith(prefix)
                        ):
                            stack.append((rel, depth + 1))
                    elif entry.is_file(follow_symlinks=False):
                        yield rel
        except OSError:
            continue
