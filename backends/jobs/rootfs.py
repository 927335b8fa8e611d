"""The files a runtime reads at start-up, written into an unpacked rootfs.

apptainer starts a container through `/.singularity.d`: the action scripts source
`env/*.sh` (the image's environment is `env/10-docker2singularity.sh`), `run`
executes `runscript` (the image's ENTRYPOINT and CMD), and `labels.json` holds
the labels. enroot reads `/etc/environment`, sources `/etc/rc` (working dir,
entrypoint, command) and `/etc/rc.local`, and mounts `/etc/fstab` (volumes).
Both are written here from the OCI image config, the way `apptainer pull` and
`enroot import` lay them out, so the builtin pipeline's images start the same.

The rootfs comes from an image, so its symlinks are resolved as if it were `/`
(`resolve`): an image whose `/etc` points at `/host/etc` makes us write into
`<rootfs>/host/etc`, never into the machine's own `/etc`.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import time
from collections.abc import Mapping, Sequence
from typing import Any

_MAX_LINKS = 40
_SD = ".singularity.d"


def resolve(root: str, rel: str) -> str:
    """`rel` under `root`, every symlink on the way followed as if `root` were `/`."""
    stack = [p for p in reversed(rel.split("/")) if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while stack:
        part = stack.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > _MAX_LINKS:
                raise OSError(f"too many symlinks under {root} resolving {rel}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            stack.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
            continue
        done.append(part)
    return os.path.join(root, *done)


def write_file(root: str, rel: str, text: str, mode: int) -> None:
    """Create or truncate `rel` inside `root` with `text`, then set `mode`."""
    path = resolve(root, rel)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if os.path.isfile(path):
        os.chmod(path, mode)  # images ship read-only /etc/hosts; we must still truncate it
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        os.fchmod(f.fileno(), mode)


def make_dir(root: str, rel: str) -> None:
    """Create directory `rel` inside `root` (and its parents) if it is missing."""
    os.makedirs(resolve(root, rel), mode=0o755, exist_ok=True)


def make_link(root: str, rel: str, target: str) -> None:
    """Create symlink `rel` -> `target` inside `root` unless something is there already."""
    parent = resolve(root, os.path.dirname(rel))
    path = os.path.join(parent, os.path.basename(rel))
    if not os.path.lexists(path):
        os.makedirs(parent, mode=0o755, exist_ok=True)
        os.symlink(target, path)


def _sq(args: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def _dq(value: str) -> str:
    """`value` inside double quotes, with what the shell would expand escaped."""
    for char in ("\\", '"', "$", "`"):
        value = value.replace(char, "\\" + char)
    return f'"{value}"'


# --- apptainer: /.singularity.d --------------------------------------------------

_SOURCE_ENV = (
    'for script in /.singularity.d/env/*.sh; do\n    [ -f "$script" ] && . "$script"\ndone\n'
)
_ACTIONS = {
    "exec": f'#!/bin/sh\n{_SOURCE_ENV}exec "$@"\n',
    "run": f"#!/bin/sh\n{_SOURCE_ENV}"
    'if [ -x /.singularity.d/runscript ]; then\n    exec /.singularity.d/runscript "$@"\nfi\n'
    'echo "No runscript found, running /bin/sh"\nexec /bin/sh "$@"\n',
    "shell": f"#!/bin/sh\n{_SOURCE_ENV}"
    'if [ -n "${APPTAINER_SHELL:-}" ] && [ -x "$APPTAINER_SHELL" ]; then\n'
    '    exec "$APPTAINER_SHELL" "$@"\nfi\n'
    "if [ -x /bin/bash ]; then\n    SHELL=/bin/bash; export SHELL\n"
    '    exec /bin/bash --norc "$@"\nfi\n'
    'SHELL=/bin/sh; export SHELL\nexec /bin/sh "$@"\n',
    "start": f"#!/bin/sh\n# Tell the instance's PID 1 to go on.\nkill -CONT 1\n{_SOURCE_ENV}"
    "if [ -x /.singularity.d/startscript ]; then\n    exec /.singularity.d/startscript\nfi\n",
    "test": f"#!/bin/sh\n{_SOURCE_ENV}"
    'if [ -x /.singularity.d/test ]; then\n    exec /.singularity.d/test "$@"\nfi\n'
    "exec /bin/sh -c true\n",
}
_ENV_SCRIPTS = {
    "01-base.sh": "#!/bin/sh\n",
    "90-environment.sh": "#!/bin/sh\n# Custom environment shell code should follow\n",
    "99-base.sh": "#!/bin/sh\n"
    'LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/.singularity.d/libs"\n'
    'PS1="Apptainer> "\nexport LD_LIBRARY_PATH PS1\n',
    "99-runtimevars.sh": "#!/bin/sh\n"
    'if [ -n "${SING_USER_DEFINED_PREPEND_PATH:-}" ]; then\n'
    '    PATH="${SING_USER_DEFINED_PREPEND_PATH}:${PATH}"\nfi\n'
    'if [ -n "${SING_USER_DEFINED_APPEND_PATH:-}" ]; then\n'
    '    PATH="${PATH}:${SING_USER_DEFINED_APPEND_PATH}"\nfi\n'
    'if [ -n "${SING_USER_DEFINED_PATH:-}" ]; then\n    PATH="${SING_USER_DEFINED_PATH}"\nfi\n'
    "unset SING_USER_DEFINED_PREPEND_PATH SING_USER_DEFINED_APPEND_PATH SING_USER_DEFINED_PATH\n"
    "export PATH\n",
}
_LINKS = {
    "singularity": f"{_SD}/runscript",
    ".run": f"{_SD}/actions/run",
    ".exec": f"{_SD}/actions/exec",
    ".test": f"{_SD}/actions/test",
    ".shell": f"{_SD}/actions/shell",
    "environment": f"{_SD}/env/90-environment.sh",
}


def oci_runscript(entrypoint: Sequence[str], cmd: Sequence[str]) -> str:
    """The runscript of an OCI image: ENTRYPOINT plus the arguments, else plus CMD."""
    lines = [
        "#!/bin/sh",
        f"OCI_ENTRYPOINT={shlex.quote(_sq(entrypoint))}",
        f"OCI_CMD={shlex.quote(_sq(cmd))}",
        "# Arguments replace CMD; ENTRYPOINT always runs first.",
    ]
    if cmd:
        lines += ["if [ $# -eq 0 ]; then", f"    set -- {_sq(cmd)}", "fi"]
    elif not entrypoint:
        lines += ["if [ $# -eq 0 ]; then", "    set -- /bin/sh", "fi"]
    lines.append(f'exec {_sq(entrypoint)} "$@"' if entrypoint else 'exec "$@"')
    return "\n".join(lines) + "\n"


def docker_env_script(env: Sequence[str]) -> str:
    """`10-docker2singularity.sh`: the image's Env; PATH is set, the rest only defaulted."""
    lines = ["#!/bin/sh"]
    for item in env:
        name, sep, value = item.partition("=")
        if not name or not name.replace("_", "a").isalnum():
            continue
        if not sep:
            lines.append(f'export {name}="${{{name}:-}}"')
        elif name == "PATH":
            lines.append(f"export PATH={_dq(value)}")
        else:
            lines.append(f'export {name}="${{{name}:-{_dq(value)[1:-1]}}}"')
    return "\n".join(lines) + "\n"


def build_labels(
    image_labels: Mapping[str, str], ref: str, digest: str, arch: str, now: float
) -> dict[str, str]:
    """labels.json: the image's labels plus the build labels apptainer adds."""
    labels = dict(image_labels or {})
    stamp = time.localtime(now)
    labels.update(
        {
            "org.label-schema.schema-version": "1.0",
            "org.label-schema.build-date": time.strftime("%A_%-d_%B_%Y_%-H:%-M:%-S_%Z", stamp),
            "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%S%z", stamp),
            "org.label-schema.usage.singularity.deffile.bootstrap": "docker",
            "org.label-schema.usage.singularity.deffile.from": ref,
            "org.opencontainers.image.base.name": ref,
            "org.opencontainers.image.base.digest": digest,
            "org.opencontainers.image.architecture": arch,
            "org.label-schema.build-arch": arch,
        }
    )
    return labels


def write_singularity(
    root: str, config: Mapping[str, Any], *, ref: str, digest: str, arch: str
) -> dict[str, bytes]:
    """Write `/.singularity.d` and friends into `root`; returns the SIF JSON objects.

    The returned map is what goes into the SIF next to the partition, by object
    name: the definition file, `inspect-metadata.json` and `oci-config.json`.
    """
    for rel in ("libs", "actions", "env"):
        make_dir(root, f"{_SD}/{rel}")
    for rel in ("dev", "proc", "root", "var/tmp", "tmp", "etc", "sys", "home"):
        make_dir(root, rel)
    for rel, target in _LINKS.items():
        make_link(root, rel, target)
    # Apptainer binds the host's; empty files give the bind mounts a target.
    write_file(root, "etc/hosts", "", 0o644)
    write_file(root, "etc/resolv.conf", "", 0o644)
    for name, text in _ACTIONS.items():
        write_file(root, f"{_SD}/actions/{name}", text, 0o755)
    env_files = dict(_ENV_SCRIPTS)
    env_files["10-docker2singularity.sh"] = docker_env_script(config.get("Env") or [])
    for name, text in env_files.items():
        write_file(root, f"{_SD}/env/{name}", text, 0o755)
    runscript = oci_runscript(config.get("Entrypoint") or [], config.get("Cmd") or [])
    write_file(root, f"{_SD}/runscript", runscript, 0o755)
    write_file(root, f"{_SD}/startscript", "#!/bin/sh\n", 0o755)
    deffile = f"bootstrap: docker\nfrom: {ref}\n"
    write_file(root, f"{_SD}/Singularity", deffile, 0o644)
    labels = build_labels(config.get("Labels") or {}, ref, digest, arch, time.time())
    write_file(root, f"{_SD}/labels.json", json.dumps(labels, indent="\t", sort_keys=True), 0o644)
    inspect = {
        "data": {
            "attributes": {
                "deffile": deffile,
                "environment": {f"/{_SD}/env/{n}": t for n, t in sorted(env_files.items())},
                "labels": labels,
                "runscript": runscript,
                "startscript": "#!/bin/sh\n",
            }
        },
        "type": "container",
    }
    return {
        "Singularity": deffile.encode(),
        "inspect-metadata.json": json.dumps(inspect).encode(),
        "oci-config.json": json.dumps(dict(config)).encode(),
    }


# --- enroot: /etc/environment, /etc/rc, /etc/rc.local, /etc/fstab ---------------

_RC_LOCAL = (
    "# This file is sourced by /etc/rc when the container starts.\n"
    "# It can be used to manipulate the entrypoint or the command of the container.\n"
)


def enroot_rc(config: Mapping[str, Any]) -> str:
    """`/etc/rc`: labels as comments, then cd to WorkingDir and exec ENTRYPOINT/CMD."""
    entrypoint = list(config.get("Entrypoint") or [])
    cmd = list(config.get("Cmd") or [])
    if not entrypoint and not cmd:
        cmd = ["/bin/sh"]
    workdir = config.get("WorkingDir") or "/"
    labels = config.get("Labels") or {}
    head = "".join(f"# {key} {value}\n" for key, value in labels.items())
    if head:
        head += "\n"
    ep = _sq(entrypoint) + " " if entrypoint else ""
    return (
        f"{head}mkdir -p {_dq(workdir)} 2> /dev/null\n"
        f"cd {_dq(workdir)} && unset OLDPWD || exit 1\n\n"
        "if [ -s /etc/rc.local ]; then\n    . /etc/rc.local\nfi\n\n"
        f'if [ $# -gt 0 ]; then\n    exec {ep}"$@"\nelse\n    exec {ep}{_sq(cmd)}\nfi\n'
    )


def write_enroot(root: str, config: Mapping[str, Any]) -> None:
    """Write the files `enroot start` reads into `root`, as `enroot import` does."""
    volumes = sorted((config.get("Volumes") or {}).keys())
    fstab = "".join(
        f"${{ENROOT_ROOTFS}}{v} {v} none x-create=dir,bind,rw,nosuid,nodev\n" for v in volumes
    )
    write_file(root, "etc/fstab", fstab, 0o644)
    env = "".join(f"{item}\n" for item in config.get("Env") or [])
    write_file(root, "etc/environment", env, 0o644)
    write_file(root, "etc/rc", enroot_rc(config), 0o644)
    write_file(root, "etc/rc.local", _RC_LOCAL, 0o644)
    make_dir(root, config.get("WorkingDir") or "/")


def fix_permissions(root: str, max_depth: int = 5) -> None:
    """Give the owner read (and search) on everything, write on shallow dirs, like enroot.

    Some distributions ship files only CAP_DAC_OVERRIDE can read (mode 0000);
    an unprivileged runtime could not read them from the image.
    """
    base = root.rstrip("/").count("/")
    for directory, dirs, files in os.walk(root):
        depth = directory.rstrip("/").count("/") - base
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            want = stat.S_IRUSR
            if stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111:
                want |= stat.S_IXUSR
            if stat.S_ISDIR(st.st_mode) and depth < max_depth:
                want |= stat.S_IWUSR
            if st.st_mode & want != want:
                os.chmod(path, stat.S_IMODE(st.st_mode) | want)
