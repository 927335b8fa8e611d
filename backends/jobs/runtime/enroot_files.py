"""enroot's start-up files: `/etc/rc`, `/etc/environment`, `/etc/fstab`, `/etc/rc.local`.

Written from the image config as `docker::configure` in enroot 4.1.2's
`src/docker.sh` writes them: `enroot start` reads `/etc/environment` and
`/etc/fstab` (through its own `${VAR}` substitution, not a shell), and runs
`/etc/rc` with the container user's login shell (`$SHELL`, else `/bin/sh`: bash,
dash, busybox or zsh), which sources `/etc/rc.local` and execs ENTRYPOINT/CMD.
The texts are enroot's byte for byte except where imgcache differs on purpose:

- Labels are comments at the top of `/etc/rc`. enroot 4.1.2 turns a newline in
  a label's value into a space; imgcache also does that to the key (in enroot a
  newline in a key still starts a line the shell runs) and to CR and NUL (bash
  refuses to run a script with a NUL near its start). So no byte of a label
  can leave its comment, whatever it holds.
- ENTRYPOINT/CMD words are single-quoted like bash's `${word@Q}` (`'it'\\''s'`).
  bash writes a word holding a control character as `$'...'`, which dash and
  busybox cannot read; imgcache keeps single quotes, and a CMD word holding a
  newline stays one word (enroot's `readarray` splits it in two).
- WorkingDir: enroot pastes it raw inside double quotes; imgcache escapes
  `\\ " $` and backticks, which changes nothing for an ordinary path.
- A volume whose name holds a newline is left out, with a note: enroot would
  write a second `/etc/fstab` line whose source the image chooses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from imgcache.backends.jobs.rootfs import make_dir, write_file

RC_LOCAL = (
    "# This file is sourced by /etc/rc when the container starts.\n"
    "# It can be used to manipulate the entrypoint or the command of the container.\n"
)
_BIND = "x-create=dir,bind,rw,nosuid,nodev"
#: What could end a comment line, or stop a shell from reading the script: a space each.
_COMMENT_BREAKS = str.maketrans({"\n": " ", "\r": " ", "\0": " "})


def comment_text(value: Any) -> str:
    """A label key or value as it goes into its `/etc/rc` comment: one line, no NUL."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.translate(_COMMENT_BREAKS)


def quote_word(word: str) -> str:
    """One ENTRYPOINT/CMD word single-quoted like bash's `${word@Q}` for printable text."""
    return "'" + word.replace("'", "'\\''") + "'"


def _dq(value: str) -> str:
    """`value` inside double quotes, with what the shell would expand escaped."""
    for char in ("\\", '"', "$", "`"):
        value = value.replace(char, "\\" + char)
    return f'"{value}"'


def _words(value: Any) -> list[str]:
    return [w for w in value if isinstance(w, str)] if isinstance(value, list) else []


def _workdir(config: Mapping[str, Any]) -> str:
    """WorkingDir, `/` when the image sets none (enroot's `${workdir:-/}`)."""
    workdir = config.get("WorkingDir")
    return workdir if isinstance(workdir, str) and workdir else "/"


def enroot_rc(config: Mapping[str, Any]) -> str:
    """`/etc/rc`: labels as comments, then cd to WorkingDir and exec ENTRYPOINT/CMD."""
    entrypoint = _words(config.get("Entrypoint"))
    cmd = _words(config.get("Cmd"))
    if not entrypoint and not cmd:
        cmd = ["/bin/sh"]
    workdir = _workdir(config)
    labels = config.get("Labels")
    labels = labels if isinstance(labels, dict) else {}
    head = "".join(f"# {comment_text(k)} {comment_text(v)}\n" for k, v in labels.items())
    if head:
        head += "\n"
    # enroot's heredoc puts `${entrypoint[@]@Q}` and `${cmd[@]@Q}` between
    # single spaces, so an empty one leaves two spaces or a trailing one.
    ep = " ".join(quote_word(w) for w in entrypoint)
    args = " ".join(quote_word(w) for w in cmd)
    return (
        f"{head}mkdir -p {_dq(workdir)} 2> /dev/null\n"
        f"cd {_dq(workdir)} && unset OLDPWD || exit 1\n\n"
        "if [ -s /etc/rc.local ]; then\n    . /etc/rc.local\nfi\n\n"
        f'if [ $# -gt 0 ]; then\n    exec {ep} "$@"\nelse\n    exec {ep} {args}\nfi\n'
    )


def enroot_fstab(config: Mapping[str, Any], note: Callable[[str], None]) -> str:
    """`/etc/fstab`: each volume a bind mount of a directory in the rootfs, sorted."""
    lines = []
    volumes = config.get("Volumes")
    for volume in sorted(volumes if isinstance(volumes, dict) else {}):
        if "\n" in volume:
            note(f"volume {volume!r} left out of /etc/fstab: its name holds a line break")
            continue
        lines.append(f"${{ENROOT_ROOTFS}}{volume} {volume} none {_BIND}\n")
    return "".join(lines)


def write_enroot(
    root: str, config: Mapping[str, Any], note: Callable[[str], None] = lambda _: None
) -> None:
    """Write the files `enroot start` reads into `root`, as `enroot import` does.

    `note` hears about anything left out (for the job log).
    """
    write_file(root, "etc/fstab", enroot_fstab(config, note), 0o644)
    env = "".join(f"{item}\n" for item in _words(config.get("Env")))
    write_file(root, "etc/environment", env, 0o644)
    write_file(root, "etc/rc", enroot_rc(config), 0o644)
    write_file(root, "etc/rc.local", RC_LOCAL, 0o644)
    make_dir(root, _workdir(config))
