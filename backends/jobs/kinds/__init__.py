"""Job kinds: one module each, registered here by name.

A kind is a `base.Kind`. Those that fill a cache are `base.JobKind`s: they say
which caches they fill, which backends can do it, and write one file, while
`base.execute` does the checking, locking and publishing around them. The
actions on images already there (compress, delete, gc, fix-perms) are in
`actions`. A new kind is one more module and one more line in `_load`, or a
`register` call.
"""

from __future__ import annotations

from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs.kinds.base import Kind
from imgcache.backends.jobs.states import JobError

KINDS: dict[str, Kind] = {}

#: The kind that fetches a registry image into each kind of cache.
FETCH_KIND = {CacheKind.SINGULARITY: "pull", CacheKind.ENROOT: "import", CacheKind.PODMAN: "save"}


def register(kind: Kind) -> Kind:
    """Make `kind` available to `JobRequest(kind=kind.name, ...)`."""
    KINDS[kind.name] = kind
    return kind


def get(name: str) -> Kind:
    """The job kind called `name`; `JobError` for an unknown one."""
    _load()
    try:
        return KINDS[name]
    except KeyError:
        raise JobError(f"unknown job kind {name!r} (known: {', '.join(KINDS)})") from None


def fetch_kind(cache: CacheKind) -> str:
    """The name of the job that fills a cache of `cache` kind from a registry."""
    return FETCH_KIND[cache]


def _load() -> None:
    # Imported on first use: the kinds import tools and probes the queue does not need.
    if KINDS:
        return
    from imgcache.backends.jobs.kinds.actions import (
        Compress,
        Delete,
        FixPermissions,
        GarbageCollect,
    )
    from imgcache.backends.jobs.kinds.add import Add
    from imgcache.backends.jobs.kinds.enroot_import import Import
    from imgcache.backends.jobs.kinds.pull import Pull
    from imgcache.backends.jobs.kinds.save import Save

    for kind in (
        Pull(),
        Import(),
        Save(),
        Add(),
        Compress(),
        Delete(),
        GarbageCollect(),
        FixPermissions(),
    ):
        register(kind)
