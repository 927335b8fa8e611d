"""Read an OCI-SIF: a SIF that holds an OCI image instead of a root filesystem partition.

SingularityCE 4 (`singularity pull --oci`, `build --oci`) writes the image's
blobs (manifest, config, layers) as SIF data objects of type OCI blob (0x400b)
and an OCI image index as the OCI root index object (0x400a); each of those
descriptors records its blob's digest in its `extra` field (sylabs/sif
`OCIBlobDigest`). Here the root index is read and checked like an archive's
`index.json`, the references it carries are kept, and the image manifests it
names are read to count the layers, all within the probe's read budget.
"""

from __future__ import annotations

from imgcache.backends.inventory.model import (
    ArchiveInfo,
    Format,
    LayerInfo,
    ProbeResult,
    SifDescriptor,
    SifInfo,
    new_probe_result,
)
from imgcache.backends.inventory.probe.archive import (
    CONTAINERD_NAME_ANNOTATION,
    INDEX_TYPES,
    MANIFEST_TYPES,
    REF_ANNOTATION,
    ArchiveError,
    oci_descriptors,
    parse_json,
)
from imgcache.backends.inventory.probe.reader import BudgetReader

#: SIF data object types of an OCI-SIF (sylabs/sif DataOCIRootIndex, DataOCIBlob).
DATA_OCI_ROOT_INDEX = 0x400A
DATA_OCI_BLOB = 0x400B


def _image_name(annotations: dict[str, str]) -> str | None:
    """The image reference an index entry's annotations give, if any.

    containerd's full name first; `ref.name` only when it is more than a bare
    tag (the image-layout spec lets it be just `latest`).
    """
    name = annotations.get(CONTAINERD_NAME_ANNOTATION)
    if name:
        return name
    name = annotations.get(REF_ANNOTATION)
    if name and ("/" in name or ":" in name):
        return name
    return None


class _Budget(Exception):
    """A blob did not fit what is left of the read budget."""


def _blob(reader: BudgetReader, desc: SifDescriptor, what: str) -> object:
    """Read and parse the JSON blob of `desc`; _Budget when it does not fit."""
    if desc.size > reader.remaining:
        raise _Budget(f"read budget reached before the {what} ({desc.size} bytes)")
    data = reader.read_at(desc.offset, desc.size)
    if len(data) < desc.size:
        raise ArchiveError(f"the {what} is cut short: truncated")
    return parse_json(data, f"the {what}")


def probe_oci_sif(reader: BudgetReader, info: SifInfo, note: str | None) -> ProbeResult:
    """Probe a SIF whose descriptors hold an OCI root index (and no partition).

    `info` is what the SIF probe read of the header and descriptors, `note` why
    it stopped short, if it did. Never raises but OSError: a broken index or a
    manifest the SIF lacks comes back as the error of a corrupt OCI-SIF.
    """
    objects = info.descriptors
    root = next(d for d in objects if d.datatype == DATA_OCI_ROOT_INDEX)
    blobs = {d.digest: d for d in objects if d.datatype == DATA_OCI_BLOB and d.digest}
    refs: list[str] = []
    layers: list[LayerInfo] = []
    manifests = 0
    error = None
    try:
        index = _blob(reader, root, "OCI root index")
        if not isinstance(index, dict):
            raise ArchiveError("the OCI root index is not a JSON object")
        entries = oci_descriptors(index, "the OCI root index", "manifests")
        for entry in entries:
            name = _image_name(entry.annotations)
            if name and name not in refs:
                refs.append(name)
        seen: set[str] = set()
        for entry in entries:
            if entry.media_type in INDEX_TYPES:
                continue  # a nested index: SingularityCE writes none
            if entry.media_type and entry.media_type not in MANIFEST_TYPES:
                continue  # an artifact, not an image
            blob = blobs.get(entry.digest)
            if blob is None:
                if note is not None:
                    continue  # its descriptor may lie past the ones read
                raise ArchiveError(
                    f"the OCI root index names {entry.digest}, which the SIF does not hold"
                )
            manifest = _blob(reader, blob, f"manifest {entry.digest}")
            manifests += 1
            for layer in oci_descriptors(manifest, f"manifest {entry.digest}", "layers"):
                if layer.digest not in seen:
                    seen.add(layer.digest)
                    layers.append(LayerInfo(layer.media_type, layer.size, layer.digest))
    except _Budget as exc:
        note = note or str(exc)
    except ArchiveError as exc:
        error = str(exc)
    archive = ArchiveInfo(refs=tuple(refs), layers=tuple(layers), manifests=manifests)
    return new_probe_result(Format.OCI_SIF, error, None, info, archive, reader.bytes_read, note)
