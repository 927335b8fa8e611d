"""enroot: `enroot import` a registry image into a `.sqsh`, and `enroot create` it.

enroot's URI is `docker://[USER@][REGISTRY#]IMAGE[:TAG]`: the registry is set
off by `#`, not `/`, and left out for Docker Hub (enroot's default). It names
files `${image////+}${tag:++${tag}}.sqsh` (`naming.enroot_filename`), refuses to
overwrite an existing output, reads `ENROOT_SQUASH_OPTIONS` for mksquashfs, and
reads credentials from the netrc file `$ENROOT_CONFIG_PATH/.credentials`.
enroot does not read registries.conf: mirrors do not apply to it.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Sequence

from imgcache.backends.inventory import refs

_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def find() -> str | None:
    """The enroot program on PATH, or None."""
    return shutil.which("enroot")


def uri(ref: refs.Reference, user: str | None = None) -> str:
    """enroot's `docker://[USER@][REGISTRY#]IMAGE[:TAG]` for `ref`."""
    if ref.digest is not None:
        raise refs.RefError(f"enroot cannot import {ref} by digest; use a tag")
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
    if n.tag:
        text += f":{n.tag}"
    return text


def import_argv(dest: str, image_uri: str) -> list[str]:
    """`enroot import --output DEST URI`."""
    return ["enroot", "import", "--output", dest, image_uri]


def import_env(squash_options: Sequence[str], config_path: str | None = None) -> dict[str, str]:
    """The environment for `enroot import`: imgcache's squash options, private credentials."""
    env = {"ENROOT_SQUASH_OPTIONS": shlex.join(squash_options)}
    if config_path:
        env["ENROOT_CONFIG_PATH"] = config_path
    return env


def create_argv(name: str, image: str) -> list[str]:
    """`enroot create --name NAME IMAGE`: unpack the shared image for the current user."""
    return ["enroot", "create", "--name", name, image]


def container_name(filename: str) -> str:
    """The container name `enroot create` would pick for an image file."""
    return filename.removesuffix(".sqsh")
