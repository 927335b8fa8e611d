"""Apptainer's scripts: its own files, and the two it generates for each OCI image.

The actions (`exec`, `run`, `shell`, `start`, `test`), the base environment
(`01-base.sh`, `90-environment.sh`, `95-apps.sh`, `99-base.sh`,
`99-runtimevars.sh`) and `startscript` are Apptainer's own files, shipped
byte for byte in `imgcache/backends/data/apptainer/` (BSD-3, Apptainer v1.5.3,
the same in v1.4.5 and on its main branch).

For an OCI image Apptainer generates two more (`conveyorPacker_oci.go`):

- the runscript, `insertRunScript`: ENTRYPOINT and CMD go through its Go
  template `ociRunscript` (`data/apptainer/oci-runscript.tmpl`), which
  `oci_runscript` renders exactly. Its semantics are Apptainer's: the
  arguments are put in double quotes and `eval`ed (`$HOME`, `$(...)` and
  backticks in them expand, as under `apptainer run`), unless
  `SINGULARITY_NO_EVAL` is set (Apptainer's `--no-eval` sets it, and
  `APPTAINER_NO_EVAL` with it; the script tests only the first). The line
  `eval "set ${SINGULARITY_OCI_RUN}"` is also what lets Apptainer run the
  script without the image's `/bin/sh`.
- `10-docker2singularity.sh`, `insertEnv` (v1.5 form): PATH is set, every
  other variable only defaulted, and a name that is not a shell identifier
  is skipped (Apptainer logs that only with `-v`; imgcache says it in the job log).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from importlib import resources

#: /.singularity.d/actions/NAME <- data/apptainer/FILE
ACTIONS = {
    "exec": "exec.sh",
    "run": "run.sh",
    "shell": "shell.sh",
    "start": "start.sh",
    "test": "test.sh",
}
#: /.singularity.d/env/NAME, each Apptainer's file of the same name.
ENV_SCRIPTS = ("01-base.sh", "90-environment.sh", "95-apps.sh", "99-base.sh", "99-runtimevars.sh")
#: The name of the file Apptainer writes the image's environment into.
DOCKER_ENV = "10-docker2singularity.sh"
#: Apptainer's `variableRegex`: an environment name it writes into the env script.
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: A Go template action with the whitespace before it (trimmed by `{{-`).
_ACTION = re.compile(r"(\s*)\{\{(-?)\s*(.*?)\s*\}\}")


@functools.cache
def script(name: str) -> str:
    """One of Apptainer's files from `data/apptainer/`, as text."""
    files = resources.files("imgcache.backends").joinpath("data", "apptainer", name)
    return files.read_text(encoding="utf-8")


def shell_escape(value: str) -> str:
    """Apptainer's `shell.Escape`: `\\`, `"`, backtick and `$` get a backslash."""
    for char in ("\\", '"', "`", "$"):
        value = value.replace(char, "\\" + char)
    return value


def _single(value: str) -> str:
    """Apptainer's `shell.EscapeSingleQuotes`: `'` becomes `'"'"'`."""
    return value.replace("'", "'\"'\"'")


def _args_quoted(words: Sequence[str]) -> str:
    """Apptainer's `shell.ArgsQuoted`: each word escaped in double quotes, joined by spaces."""
    return " ".join(f'"{shell_escape(w)}"' for w in words)


def _prepend(words: Sequence[str]) -> str:
    """The `set -- 'WORD' "$@"` lines that put `words` in front of the arguments."""
    return "".join(f"set -- '{_single(w)}' \"$@\"\n" for w in reversed(words))


def render_template(text: str, data: Mapping[str, str]) -> str:
    """Go `text/template`, as much as `ociRunscript` uses.

    `{{ .Field }}`, `{{ if .Field }}` / `{{ else if .Field }}` / `{{ else }}` /
    `{{ end }}` (a field is true when it is not empty), and `{{-`, which trims
    the whitespace before the action. Anything else is a ValueError.
    """
    out: list[str] = []
    # One entry per open `if`: [this branch is the one taken, a branch was taken].
    stack: list[list[bool]] = []
    pos = 0
    for match in _ACTION.finditer(text):
        space, trim, action = match.groups()
        if all(branch for branch, _taken in stack):
            out.append(text[pos : match.start()] + ("" if trim else space))
        pos = match.end()
        words = action.split()
        if len(words) == 1 and words[0].startswith("."):
            if all(branch for branch, _taken in stack):
                out.append(data[words[0][1:]])
        elif words[0] == "if" and len(words) == 2:
            value = bool(data[words[1].removeprefix(".")])
            stack.append([value, value])
        elif words[:2] == ["else", "if"] and len(words) == 3 and stack:
            value = not stack[-1][1] and bool(data[words[2].removeprefix(".")])
            stack[-1] = [value, stack[-1][1] or value]
        elif words == ["else"] and stack:
            stack[-1] = [not stack[-1][1], True]
        elif words == ["end"] and stack:
            stack.pop()
        else:
            raise ValueError(f"template action {{{{{action}}}}} is not supported")
    if stack:
        raise ValueError("template has an `if` without `end`")
    out.append(text[pos:])
    return "".join(out)


def oci_runscript(entrypoint: Sequence[str], cmd: Sequence[str]) -> str:
    """`/.singularity.d/runscript` for an image's ENTRYPOINT and CMD, as Apptainer writes it."""
    head = "#!/bin/sh\n"
    head += f"OCI_ENTRYPOINT='{_single(_args_quoted(entrypoint))}'\n"
    head += f"OCI_CMD='{_single(_args_quoted(cmd))}'\n"
    data = {"PrependCmd": _prepend(cmd), "PrependEntrypoint": _prepend(entrypoint)}
    return head + render_template(script("oci-runscript.tmpl"), data)


def docker_env_script(env: Sequence[str]) -> tuple[str, list[str]]:
    """`10-docker2singularity.sh` for an image's Env, and the names it had to skip.

    As Apptainer >= 1.5 writes it: `export PATH="V"`, `export N="${N:-"V"}"` for
    the rest (a value set at run time wins), `export N="${N:-}"` for a bare name;
    V escaped with `shell_escape`. A name that is not a shell identifier
    (`1BAD`, `é`) would break the script in dash and busybox, so it is skipped.
    """
    lines = ["#!/bin/sh\n"]
    skipped: list[str] = []
    for element in env:
        if not isinstance(element, str):
            continue
        name, sep, value = element.partition("=")
        if not _NAME.fullmatch(name):
            skipped.append(name)
        elif not sep:
            lines.append(f'export {name}="${{{name}:-}}"\n')
        elif name == "PATH":
            lines.append(f'export PATH="{shell_escape(value)}"\n')
        else:
            lines.append(f'export {name}="${{{name}:-"{shell_escape(value)}"}}"\n')
    return "".join(lines), skipped
