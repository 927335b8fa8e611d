"""siftool: assemble a SIF from a squashfs and metadata, as `apptainer build` lays it out.

`apptainer pull docker://...` writes, in this order: the definition file
(datatype 1), the JSON objects sorted by name (datatype 6, `inspect-metadata.json`
and `oci-config.json`), then the squashfs as the primary system partition for the
image's architecture. The builtin pipeline writes the same objects.
"""

from __future__ import annotations

#: SIF data object types (siftool add --datatype).
DATATYPE_DEFFILE = 1
DATATYPE_GENERIC_JSON = 6
DATATYPE_PARTITION = 4
PARTFS_SQUASHFS = 1
PARTTYPE_PRIMARY_SYSTEM = 2
#: siftool --partarch codes per OCI architecture name.
ARCH_CODES = {
    "386": 1,
    "amd64": 2,
    "arm": 3,
    "arm64": 4,
    "ppc64": 5,
    "ppc64le": 6,
    "mips": 7,
    "mipsle": 8,
    "mips64": 9,
    "mips64le": 10,
    "s390x": 11,
    "riscv64": 12,
}


def arch_code(arch: str) -> int:
    """The siftool code for an OCI architecture; ValueError for one SIF cannot name."""
    try:
        return ARCH_CODES[arch]
    except KeyError:
        raise ValueError(f"SIF has no code for architecture {arch!r}") from None


def new_argv(sif: str) -> list[str]:
    """`siftool new SIF`: an empty SIF with the default 48 descriptors."""
    return ["siftool", "new", sif]


def add_object_argv(sif: str, source: str, datatype: int, name: str | None = None) -> list[str]:
    """`siftool add` of a metadata object (def file, JSON) named `name`."""
    argv = ["siftool", "add", "--datatype", str(datatype)]
    if name:
        argv += ["--filename", name]
    return [*argv, sif, source]


def add_partition_argv(sif: str, squashfs: str, arch: str) -> list[str]:
    """`siftool add` of the squashfs as the primary system partition."""
    return [
        "siftool",
        "add",
        "--datatype",
        str(DATATYPE_PARTITION),
        "--parttype",
        str(PARTTYPE_PRIMARY_SYSTEM),
        "--partfs",
        str(PARTFS_SQUASHFS),
        "--partarch",
        str(arch_code(arch)),
        sif,
        squashfs,
    ]
