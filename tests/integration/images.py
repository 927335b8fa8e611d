"""Small OCI images built with umoci, of the shapes the job tests need.

Each builder returns an OCI layout whose image is tagged "latest"; the registry
fixture pushes them. They hold a few files each so a whole suite stays fast.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from imgcache.backends.tools.run import run


def build_image(
    dest: Path,
    layers: Sequence[Mapping[str, bytes]],
    *,
    whiteouts: Sequence[str] = (),
    env: Sequence[str] = ("PATH=/usr/local/bin:/usr/bin:/bin",),
    entrypoint: Sequence[str] = (),
    cmd: Sequence[str] = ("/bin/sh",),
    labels: Mapping[str, str] | None = None,
    volumes: Sequence[str] = (),
    workdir: str | None = None,
    arch: str | None = None,
    links: Mapping[str, str] | None = None,
) -> Path:
    """An OCI layout at `dest` with one layer per mapping, then one per whiteout.

    `links` (name -> target) are symlinks added to the first layer.
    """
    if dest.exists():
        shutil.rmtree(dest)
    image = f"{dest}:latest"
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    run(["umoci", "init", "--layout", str(dest)], capture=True)
    run(["umoci", "new", "--image", image], capture=True)
    for i, files in enumerate(layers):
        tree = dest.parent / f"{dest.name}.layer{i}"
        if tree.exists():
            shutil.rmtree(tree)
        for name, data in files.items():
            path = tree / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o755 if name.startswith(("bin/", "usr/bin/")) else 0o644)
        for name, target in (links or {}).items() if i == 0 else ():
            path = tree / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(target)
        tree.mkdir(exist_ok=True)
        run(["umoci", "insert", *rootless, "--image", image, str(tree), "/"], capture=True)
        shutil.rmtree(tree)
    for target in whiteouts:
        run(["umoci", "insert", *rootless, "--image", image, "--whiteout", target], capture=True)
    config = ["umoci", "config", "--image", image]
    for item in env:
        config += ["--config.env", item]
    for arg in entrypoint:
        config += ["--config.entrypoint", arg]
    for arg in cmd:
        config += ["--config.cmd", arg]
    for key, value in (labels or {}).items():
        config += ["--config.label", f"{key}={value}"]
    for volume in volumes:
        config += ["--config.volume", volume]
    if workdir:
        config += ["--config.workingdir", workdir]
    if arch:
        config += ["--architecture", arch]
    run(config, capture=True)
    return dest


def small_files(tag: str) -> dict[str, bytes]:
    """A few files that say which image they belong to."""
    return {
        "etc/os-release": f'NAME="imgcache test"\nVERSION="{tag}"\n'.encode(),
        "bin/hello": b"#!/bin/sh\necho hello\n",
        f"usr/share/imgcache/{tag}.txt": f"{tag}\n".encode() * 50,
    }
