"""apptainer / singularity: `pull docker://REF` straight into a SIF.

apptainer is preferred when both are installed (singularity is often a
compatibility link to it). The output file must not exist unless `--force` is
given; jobs hand it a fresh temp name, so `--force` is never needed. Registry
credentials go in `APPTAINER_DOCKER_USERNAME`/`_PASSWORD` (see
`imgcache.backends.jobs.credentials`), never on the argv. apptainer prints skopeo-style
"Copying blob" lines while fetching, which give the fetch progress.

Its cache stays out of the admin's home: without `APPTAINER_CACHEDIR` or
`SINGULARITY_CACHEDIR` in the environment, the pull runs with
`--disable-cache` (apptainer then writes straight to the output instead of
filling `~/.apptainer/cache`); where the admin set either, that cache is used
as they asked. Its temporary files (the OCI layout, the unpacked rootfs) go
in the job's scratch directory through `APPTAINER_TMPDIR` (`SINGULARITY_TMPDIR`
for singularity) unless either is set.

apptainer squashes with its own settings (`apptainer.conf`, gzip unless its
`mksquashfs args` say otherwise), not imgcache's `squash_options`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

#: Names tried in order.
BINARIES = ("apptainer", "singularity")
#: apptainer reads each setting under both prefixes (APPTAINER_ first).
_PREFIXES = ("APPTAINER_", "SINGULARITY_")


def find() -> str | None:
    """The apptainer (or else singularity) program on PATH, or None."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _user_set(name: str, environ: Mapping[str, str]) -> bool:
    return any(environ.get(prefix + name) for prefix in _PREFIXES)


def uses_user_cache(environ: Mapping[str, str] | None = None) -> bool:
    """True when the admin chose a cache directory (`APPTAINER_CACHEDIR`/`SINGULARITY_CACHEDIR`)."""
    return _user_set("CACHEDIR", os.environ if environ is None else environ)


def pull_argv(
    binary: str, dest: str, ref: str, environ: Mapping[str, str] | None = None
) -> list[str]:
    """`apptainer pull [--disable-cache] DEST docker://REF` (see the module docstring)."""
    argv = [binary, "pull"]
    if not uses_user_cache(environ):
        argv.append("--disable-cache")
    return [*argv, dest, f"docker://{ref}"]


def pull_env(binary: str, scratch: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables added for a pull: its temporary directory in `scratch`, unless set."""
    if _user_set("TMPDIR", os.environ if environ is None else environ):
        return {}
    prefix = "SINGULARITY_" if os.path.basename(binary) == "singularity" else "APPTAINER_"
    return {f"{prefix}TMPDIR": scratch}
