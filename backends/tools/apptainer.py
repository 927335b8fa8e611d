"""apptainer / singularity: `pull docker://REF` straight into a SIF.

apptainer is preferred when both are installed (singularity is often a
compatibility link to it). The output file must not exist unless `--force` is
given; jobs hand it a fresh temp name, so `--force` is never needed. Registry
credentials go in `APPTAINER_DOCKER_USERNAME`/`_PASSWORD` (see
`imgcache.backends.jobs.credentials`), never on the argv. apptainer prints skopeo-style
"Copying blob" lines while fetching, which give the fetch progress.

apptainer squashes with its own settings (`apptainer.conf`), not imgcache's
`squash_options`.
"""

from __future__ import annotations

import shutil

#: Names tried in order.
BINARIES = ("apptainer", "singularity")


def find() -> str | None:
    """The apptainer (or else singularity) program on PATH, or None."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


def pull_argv(binary: str, dest: str, ref: str) -> list[str]:
    """`apptainer pull DEST docker://REF`."""
    return [binary, "pull", dest, f"docker://{ref}"]
