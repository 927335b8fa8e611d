"""Apptainer's `/.singularity.d` in an unpacked rootfs, and the SIF's metadata objects.

In the order of Apptainer's `OCIConveyorPacker.Pack` and build stage: the base
environment (directories, symlinks, empty `/etc/hosts` and `/etc/resolv.conf`,
its action and env scripts), the runscript and `10-docker2singularity.sh` from
the image config, `labels.json` (the image's labels plus the build labels),
the definition file `Singularity`, and the SIF objects: the definition,
`inspect-metadata.json` (what `apptainer inspect --all` shows) and
`oci-config.json`. The scripts are in `apptainer_scripts`.

JSON is written as Go's `encoding/json` writes it (`go_json`). The build
labels are those of Apptainer's main branch (1.6), which adds an RFC 3339
`org.opencontainers.image.created` and `org.opencontainers.image.architecture`
to 1.5's; `org.label-schema.usage.apptainer.version` is left out, since no
Apptainer made the image. The time is now, or `SOURCE_DATE_EPOCH` when set.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imgcache.backends.jobs.rootfs import make_dir, make_link, utf8, write_file
from imgcache.backends.jobs.runtime import apptainer_scripts as scripts

SD = ".singularity.d"
_DIRS = (f"{SD}/libs", f"{SD}/actions", f"{SD}/env")
_DIRS += ("dev", "proc", "root", "var/tmp", "tmp", "etc", "sys", "home")
_LINKS = {
    "singularity": f"{SD}/runscript",
    ".run": f"{SD}/actions/run",
    ".exec": f"{SD}/actions/exec",
    ".test": f"{SD}/actions/test",
    ".shell": f"{SD}/actions/shell",
    "environment": f"{SD}/env/90-environment.sh",
}
#: Go's encoder escapes these inside strings (HTML safety); Python's does not.
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
#: The env files `apptainer inspect` shows: `10-docker*.sh`, `9*-environment.sh`.
_INSPECTED_ENV = re.compile(r"10-docker.*\.sh|9.*-environment\.sh")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August")
_MONTHS += ("September", "October", "November", "December")


@dataclass(frozen=True, slots=True)
class SifMetadata:
    """What goes into the SIF beside the partition, in Apptainer's order."""

    deffile: bytes
    """The definition file (an object with no name)."""
    json_objects: dict[str, bytes]
    """Generic JSON objects by name, added sorted by name."""


def _words(value: Any) -> list[str]:
    """ENTRYPOINT or CMD as a list of words (anything else in the config is no word)."""
    return [w for w in value if isinstance(w, str)] if isinstance(value, list) else []


def go_json(value: Any, *, indent: str | None = None, sort_keys: bool = False) -> str:
    """JSON as Go's `json.Marshal` / `MarshalIndent(v, "", indent)` writes it.

    UTF-8 kept, `<`, `>`, `&`, U+2028 and U+2029 escaped, no trailing newline.
    Go sorts map keys; a struct keeps its field order, so `sort_keys` is the caller's.
    """
    if indent is None:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    else:
        text = json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys)
    return text.translate(_GO_ESCAPES)


def build_time(environ: Mapping[str, str] | None = None) -> datetime:
    """The build time in the local zone: `SOURCE_DATE_EPOCH` when it is a number, else now."""
    environ = os.environ if environ is None else environ
    stamp = time.time()
    text = environ.get("SOURCE_DATE_EPOCH", "")
    if text.strip().lstrip("-").isdigit():
        stamp = float(int(text))
    return datetime.fromtimestamp(stamp).astimezone()


def rfc3339(when: datetime) -> str:
    """Go's `time.RFC3339`: `2026-12-07T02:16:16Z`, or `...+01:00` off UTC."""
    text = when.isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def label_schema_date(when: datetime) -> str:
    """`org.label-schema.build-date`, Apptainer's way: `Monday_7_December_2026_2:16:16_UTC`."""
    clock = f"{when.hour}:{when.minute}:{when.second}"
    date = f"{when.day}_{_MONTHS[when.month - 1]}_{when.year}"
    return f"{_DAYS[when.weekday()]}_{date}_{clock}_{when.tzname() or ''}"


def build_labels(
    image_labels: Mapping[str, Any], ref: str, digest: str, arch: str, when: datetime
) -> dict[str, str]:
    """labels.json: the image's labels, then the build labels Apptainer sets over them."""
    labels = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in image_labels.items()}
    labels.update(
        {
            "org.label-schema.schema-version": "1.0",
            "org.opencontainers.image.created": rfc3339(when),
            "org.label-schema.build-date": label_schema_date(when),
            "org.label-schema.usage.singularity.deffile.bootstrap": "docker",
            "org.label-schema.usage.singularity.deffile.from": ref,
            "org.opencontainers.image.base.name": ref,
            "org.opencontainers.image.base.digest": digest,
            "org.opencontainers.image.architecture": arch,
            "org.label-schema.build-arch": arch,
        }
    )
    return labels


def inspect_metadata(
    env_files: Mapping[str, str], labels: Mapping[str, str], runscript: str, deffile: str
) -> bytes:
    """`inspect-metadata.json`: what `apptainer inspect --all` reads from the rootfs.

    Only the `10-docker*.sh` and `9*-environment.sh` env files, each text with
    its trailing newlines trimmed, in the field order of Apptainer's
    `inspect.Attributes`; compact, as `json.Marshal` writes it.
    """
    environment = {
        f"/{SD}/env/{name}": env_files[name].rstrip("\n")
        for name in sorted(env_files)
        if _INSPECTED_ENV.fullmatch(name)
    }
    attributes = {
        "environment": environment,
        "labels": dict(sorted(labels.items())),
        "runscript": runscript.rstrip("\n"),
        "deffile": deffile.rstrip("\n"),
        "startscript": scripts.script("startscript.sh").rstrip("\n"),
    }
    return utf8(go_json({"data": {"attributes": attributes}, "type": "container"}))


def write_singularity(
    root: str,
    config: Mapping[str, Any],
    *,
    ref: str,
    digest: str,
    arch: str,
    note: Callable[[str], None] = lambda _: None,
    when: datetime | None = None,
) -> SifMetadata:
    """Write `/.singularity.d` and friends into `root`; returns the SIF's metadata objects.

    `note` hears about anything left out (environment names that are not shell
    identifiers), for the job log.
    """
    for rel in _DIRS:
        make_dir(root, rel)
    for rel, target in _LINKS.items():
        make_link(root, rel, target)
    # Apptainer binds the host's; empty files give the bind mounts a target.
    write_file(root, "etc/hosts", "", 0o644)
    write_file(root, "etc/resolv.conf", "", 0o644)
    for name, source in scripts.ACTIONS.items():
        write_file(root, f"{SD}/actions/{name}", scripts.script(source), 0o755)
    env_files = {name: scripts.script(name) for name in scripts.ENV_SCRIPTS}
    env = config.get("Env")
    env_text, skipped = scripts.docker_env_script(env if isinstance(env, list) else [])
    if skipped:
        names = ", ".join(repr(n) for n in skipped)
        note(f"environment left out of {scripts.DOCKER_ENV}, not shell names: {names}")
    env_files[scripts.DOCKER_ENV] = env_text
    for name in sorted(env_files):
        write_file(root, f"{SD}/env/{name}", env_files[name], 0o755)
    runscript = scripts.oci_runscript(_words(config.get("Entrypoint")), _words(config.get("Cmd")))
    write_file(root, f"{SD}/runscript", runscript, 0o755)
    write_file(root, f"{SD}/startscript", scripts.script("startscript.sh"), 0o755)
    deffile = f"bootstrap: docker\nfrom: {ref}\n\n"
    write_file(root, f"{SD}/Singularity", deffile, 0o644)
    when = when or build_time()
    image_labels = config.get("Labels")
    image_labels = image_labels if isinstance(image_labels, dict) else {}
    labels = build_labels(image_labels, ref, digest, arch, when)
    write_file(root, f"{SD}/labels.json", go_json(labels, indent="\t", sort_keys=True), 0o644)
    return SifMetadata(
        deffile=deffile.encode(),
        json_objects={
            "inspect-metadata.json": inspect_metadata(env_files, labels, runscript, deffile),
            "oci-config.json": utf8(go_json(dict(config))),
        },
    )
