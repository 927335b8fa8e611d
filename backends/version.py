"""The version of the installed imgcache, read from its distribution's metadata.

One place for it: `imgcache --version`, the stamp on `--json` objects, the trash
manifests and the man page all ask here, so they cannot disagree with what pip
installed. The lookup is done once, and only when asked (`importlib.metadata`
reads the installed `dist-info`, which a tab completion should not pay for).
"""

from __future__ import annotations

import functools

#: The distribution imgcache is installed as (pyproject.toml's `[project] name`).
DISTRIBUTION = "imgcache"
#: What `version()` says when imgcache runs from a source tree that was never installed.
UNKNOWN = "unknown"


@functools.cache
def version() -> str:
    """The installed version (`0.1.0`), or `unknown` when imgcache is not installed."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def stamp() -> dict[str, str]:
    """The writer's record a JSON object carries under the key `imgcache`."""
    return {"version": version()}
