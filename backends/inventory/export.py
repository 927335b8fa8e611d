"""The JSON shapes of `imgcache list --json` and `imgcache defaults --json`.

These are an interface for scripts: keys are only ever added, never renamed or
removed, and the README documents each one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from imgcache.backends.inventory.catalog import Inventory
from imgcache.backends.inventory.defaults import DefaultImage, Presence, Profile
from imgcache.backends.inventory.model import Image

SCHEMA_VERSION = 1


def iso(timestamp: float) -> str:
    """A POSIX timestamp as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def image_dict(image: Image) -> dict[str, Any]:
    """One image as `imgcache list --json` prints it."""
    probe = image.probe
    out: dict[str, Any] = {
        "cache": image.cache.value,
        "root": image.root,
        "path": image.path,
        "ref": image.ref,
        "ref_error": image.ref_error,
        "format": probe.format.value,
        "compression": probe.compression,
        "data_compressed": probe.data_compressed,
        "block_size": probe.block_size,
        "size": image.stat.size,
        "mtime": iso(image.stat.mtime),
        "atime": iso(image.stat.atime),
        "owner": image.owner,
        "group": image.group,
        "mode": f"{image.stat.mode & 0o7777:04o}",
        "findings": list(image.codes),
        "reasons": {f.code: f.reason for f in image.findings},
        "error": probe.error,
        "note": probe.note,
    }
    if probe.sif is not None:
        out["sif"] = {
            "arch": probe.sif.arch,
            "signed": probe.sif.signed,
            "partitions": [
                {
                    "id": d.id,
                    "fstype": d.fstype,
                    "parttype": d.parttype,
                    "arch": d.arch,
                    "size": d.size,
                }
                for d in probe.sif.descriptors
                if d.fstype is not None
            ],
            "descriptors": [d.datatype_name for d in probe.sif.descriptors],
        }
    if probe.archive is not None:
        out["archive"] = {
            "refs": list(probe.archive.refs),
            "layers": len(probe.archive.layers),
            "media_types": sorted({layer.media_type for layer in probe.archive.layers}),
        }
    return out


def presence_dict(p: Presence) -> dict[str, Any]:
    """One default in one cache, as `imgcache defaults --json` prints it."""
    return {
        "cache": p.cache_kind.value,
        "root": p.cache_root,
        "state": p.state,
        "path": p.path,
        "detail": p.detail or None,
    }


def profile_dict(profile: Profile) -> dict[str, Any]:
    """A shipped profile of default images."""
    return {
        "name": profile.name,
        "title": profile.title,
        "source": profile.source,
        "images": dict(profile.images),
    }


def default_dict(inventory: Inventory, default: DefaultImage) -> dict[str, Any]:
    """One default image with its presence in each cache."""
    return {
        "env": default.env,
        "title": default.title,
        "image": default.value,
        "ref": str(default.ref.normalized()) if default.ref else None,
        "origin": default.origin,
        "error": default.error,
        "pool": default.pool,
        "caches": [presence_dict(p) for p in inventory.presence if p.default is default],
    }


def defaults_dict(inventory: Inventory) -> dict[str, Any]:
    """The whole `imgcache defaults --json` document.

    `defaults` holds the cluster's defaults, one per environment, as it always has;
    `pools` each resource pool of master.yaml with the defaults it sets apart from the
    cluster's, and `notes` what master.yaml says about images that imgcache does not read.
    """
    defaults = inventory.defaults
    pools = [
        {
            "name": pool.name,
            "origin": pool.origin,
            "images": dict(pool.images),
            "defaults": [default_dict(inventory, d) for d in defaults if d.pool == pool.name],
        }
        for pool in inventory.settings.pools
    ]
    return {
        "profile": profile_dict(inventory.profile),
        "defaults": [default_dict(inventory, d) for d in defaults if d.pool is None],
        "pools": pools,
        "notes": list(inventory.settings.notes),
    }
