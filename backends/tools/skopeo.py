"""skopeo: fetch images from registries without a daemon.

skopeo reads the containers configuration the admin already has: registries.conf
mirrors and insecure registries, the signature policy, auth files. Two details:

- skopeo 1.9 (Debian bookworm) ignores `CONTAINERS_REGISTRIES_CONF`, which podman
  and newer skopeo honour; when it is set we pass it on as `--registries-conf`,
  an option every skopeo since 1.0 accepts.
- without any policy.json skopeo refuses to copy; then (and only then) we pass
  `--insecure-policy`, which is what the default policy file would allow anyway.

Credentials go in an auth file (`--authfile`), never `--creds` on the argv. Jobs
hand skopeo `--tmpdir` in their scratch directory: skopeo stages a whole image
there before it writes an archive, in /var/tmp otherwise.
skopeo on a pipe prints one "Copying blob" line as it starts each layer; that,
against the manifest's layer count, is the fetch progress.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from imgcache.backends.tools.run import Runner

_POLICY_FILES = ("/etc/containers/policy.json",)
_LIST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x"}
_FATAL_MSG = re.compile(r'level=fatal msg="((?:[^"\\]|\\.)*)"')


def host_arch() -> str:
    """This machine's architecture as OCI names it (amd64, arm64, ...)."""
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine)


def _policy_exists(env: Mapping[str, str]) -> bool:
    home = env.get("HOME") or os.path.expanduser("~")
    user = os.path.join(home, ".config", "containers", "policy.json")
    return any(os.path.isfile(p) for p in (*_POLICY_FILES, user))


def global_args(env: Mapping[str, str] | None = None) -> list[str]:
    """Options before the skopeo subcommand: registries.conf and policy, see the module doc."""
    env = os.environ if env is None else env
    args = []
    conf = env.get("CONTAINERS_REGISTRIES_CONF")
    if conf:
        args += ["--registries-conf", conf]
    if not _policy_exists(env):
        args.append("--insecure-policy")
    return args


def inspect_raw_argv(ref: str, authfile: str | None = None) -> list[str]:
    """`skopeo inspect --raw docker://REF`: the manifest (or index) as stored."""
    auth = ["--authfile", authfile] if authfile else []
    return ["skopeo", *global_args(), "inspect", "--raw", *auth, f"docker://{ref}"]


def copy_argv(
    source: str,
    dest: str,
    *,
    authfile: str | None = None,
    retries: int = 2,
    tmpdir: str | None = None,
) -> list[str]:
    """`skopeo copy SOURCE DEST` with the source registry's auth file and retries.

    `tmpdir` is where skopeo stages big files (`--tmpdir`): a whole image before it
    writes an archive. Without it skopeo 1.9 uses /var/tmp, whatever `TMPDIR` says.
    """
    auth = ["--src-authfile", authfile] if authfile else []
    staging = ["--tmpdir", tmpdir] if tmpdir else []
    return [
        "skopeo",
        *global_args(),
        *staging,
        "copy",
        "--retry-times",
        str(retries),
        *auth,
        source,
        dest,
    ]


def one_line(tail: str) -> str:
    """The message of skopeo's last fatal log line, unquoted; else its last line."""
    matches = _FATAL_MSG.findall(tail)
    if matches:
        return matches[-1].replace('\\"', '"')
    lines = [line for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    """What the registry says about an image before it is fetched."""

    layers: int
    size: int
    """Sum of the compressed layer sizes, for progress and disk-space estimates."""
    digest: str | None = None
    """The platform manifest's digest when the ref named an index."""


def parse_manifest(data: bytes) -> tuple[ManifestInfo | None, str | None]:
    """(info, None) for an image manifest, (None, digest) for an index: fetch that next."""
    doc = json.loads(data)
    media = doc.get("mediaType", "")
    if media in _LIST_TYPES or "manifests" in doc:
        arch = host_arch()
        for entry in doc.get("manifests", []):
            plat = entry.get("platform") or {}
            if plat.get("architecture") == arch and plat.get("os", "linux") == "linux":
                return None, entry.get("digest")
        raise ValueError(f"the image has no {arch} variant")
    layers = doc.get("layers") or doc.get("fsLayers") or []
    size = sum(int(layer.get("size", 0)) for layer in layers)
    return ManifestInfo(len(layers), size), None


def inspect(ref: str, runner: Runner, *, authfile: str | None = None) -> ManifestInfo:
    """The layer count and size of `ref` for this machine's platform.

    `runner` runs an argv the way the job wants (log, cancel), like `run`.
    """
    info, digest = parse_manifest(runner(inspect_raw_argv(ref, authfile), capture=True).stdout)
    if info is not None:
        return info
    repo = ref.split("@")[0]
    if repo.rfind(":") > repo.rfind("/"):
        repo = repo[: repo.rfind(":")]
    pinned = f"{repo}@{digest}"
    info, _ = parse_manifest(runner(inspect_raw_argv(pinned, authfile), capture=True).stdout)
    if info is None:
        raise ValueError(f"{pinned} is an index again, not an image manifest")
    return ManifestInfo(info.layers, info.size, digest)


class BlobCounter:
    """Turns skopeo's "Copying blob" lines into (done, total) layer counts.

    `total` may be None until it is known (an inspect running beside the copy
    sets it); the callback then gets None for it.
    """

    def __init__(self, total: int | None, on_progress: Callable[[int, int | None], None]) -> None:
        self.total = total
        self.seen = 0
        self._on_progress = on_progress

    def __call__(self, line: str) -> None:
        """Feed one line of skopeo output."""
        if line.startswith("Copying blob"):
            self.seen += 1
            total = self.total
            self._on_progress(self.seen if total is None else min(self.seen, total), total)
