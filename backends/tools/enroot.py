"""enroot: `enroot import` a registry image into a `.sqsh`, and `enroot create` it.

enroot's URI is `docker://[USER@][REGISTRY#]IMAGE[:TAG|@sha256:HEX]`: the
registry is set off by `#`, not `/`, and left out for Docker Hub (enroot's
default); a digest needs enroot >= 4.0. It names files after the image and the
tag, `+latest` when there is none (`naming.enroot_filename`), refuses to
overwrite an existing output, reads `ENROOT_SQUASH_OPTIONS` for mksquashfs, and
reads credentials from the netrc file `$ENROOT_CONFIG_PATH/.credentials`.
enroot does not read registries.conf: mirrors do not apply to it.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Sequence

from imgcache.backends.inventory import refs

_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
#: enroot's `reg_digest`: the only digests its URIs and file names take.
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_VERSION = re.compile(r"(\d+)\.(\d+)")


def find() -> str | None:
    """The enroot program on PATH, or None."""
    return shutil.which("enroot")


def uri(ref: refs.Reference, user: str | None = None) -> str:
    """enroot's `docker://[USER@][REGISTRY#]IMAGE[:TAG|@DIGEST]` for `ref`.

    With a digest the tag is left out (enroot would ignore it). A digest other
    than sha256 is refused: enroot cannot take it.
    """
    if ref.digest is not None and not _DIGEST.fullmatch(ref.digest):
        raise refs.RefError(f"enroot takes only sha256 digests, not {ref.digest.split(':')[0]}")
    n = ref.normalized()
    text = "docker://"
    if user:
        text += f"{user}@"
    path = n.path
    if n.registry not in _DOCKER_HUB:
        text += f"{n.registry}#"
    elif path.startswith("library/") and path.count("/") == 1:
        path = path.removeprefix("library/")  # enroot adds library/ itself
    text += path
    if n.digest:
        text += f"@{n.digest}"
    elif n.tag:
        text += f":{n.tag}"
    return text


def takes_digests(version_output: str) -> bool:
    """Whether the enroot that printed `version_output` takes digests (it is >= 4.0)."""
    match = _VERSION.search(version_output)
    return match is not None and int(match.group(1)) >= 4


def version_argv() -> list[str]:
    """`enroot version`: prints the version, e.g. `4.1.2`."""
    return ["enroot", "version"]


def import_argv(dest: str, image_uri: str) -> list[str]:
    """`enroot import --output DEST URI`."""
    return ["enroot", "import", "--output", dest, image_uri]


def import_env(squash_options: Sequence[str], config_path: str | None = None) -> dict[str, str]:
    """The environment for `enroot import`: imgcache's squash options, private credentials.

    enroot splits `ENROOT_SQUASH_OPTIONS` on spaces and removes no quotes, so an
    option that would need quoting (a space, a quote, a glob) is a ValueError.
    """
    for option in squash_options:
        if shlex.quote(option) != option:
            raise ValueError(
                f"squash option {option!r} cannot go through ENROOT_SQUASH_OPTIONS: "
                "enroot splits it on spaces and keeps quotes"
            )
    env = {"ENROOT_SQUASH_OPTIONS": " ".join(squash_options)}
    if config_path:
        env["ENROOT_CONFIG_PATH"] = config_path
    return env


def create_argv(name: str, image: str) -> list[str]:
    """`enroot create --name NAME IMAGE`: unpack the shared image for the current user."""
    return ["enroot", "create", "--name", name, image]


def container_name(filename: str) -> str:
    """The container name `enroot create` would pick for an image file."""
    return filename.removesuffix(".sqsh")
