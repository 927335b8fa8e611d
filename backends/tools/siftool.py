"""siftool: assemble a SIF from a squashfs and metadata, as `apptainer build` lays it out.

`apptainer pull docker://...` writes, in this order: the definition file
(datatype 1, no name), the JSON objects sorted by name (datatype 6,
`inspect-metadata.json` and `oci-config.json`), then the squashfs as the primary
system partition for the image's architecture; every object in group 1 (the
sif library's default; `apptainer sign` and `verify` refuse an image whose
objects are in no group), and the launch line `#!/usr/bin/env run-singularity`
in the header. siftool's own default is no group, so every `add` says
`--groupid 1`; it has no way to set the launch line, so `write_launch_script`
writes it into the header after `siftool new` (later `add`s keep it).
"""

from __future__ import annotations

import os
import stat

#: SIF data object types (siftool add --datatype).
DATATYPE_DEFFILE = 1
DATATYPE_GENERIC_JSON = 6
DATATYPE_PARTITION = 4
PARTFS_SQUASHFS = 1
PARTTYPE_PRIMARY_SYSTEM = 2
#: The data object group apptainer puts every object in.
GROUP = 1
#: What `apptainer build` writes at the start of the header, so `./image.sif` runs.
LAUNCH_SCRIPT = b"#!/usr/bin/env run-singularity\n"
_LAUNCH_LEN = 32
_MAGIC = b"SIF_MAGIC\0"
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


def write_launch_script(sif: str, script: bytes = LAUNCH_SCRIPT) -> None:
    """Write `script` into the launch field at the start of a SIF's header.

    The field is 32 bytes, NUL-padded; the file must be a regular file (no
    link followed) that reads as a SIF, as `siftool new` left it.
    """
    if len(script) >= _LAUNCH_LEN:
        raise ValueError(f"a SIF launch script holds at most {_LAUNCH_LEN - 1} bytes")
    fd = os.open(sif, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{sif} is not a regular file")
        if os.pread(fd, _LAUNCH_LEN + len(_MAGIC), 0)[_LAUNCH_LEN:] != _MAGIC:
            raise OSError(f"{sif} is not a SIF (siftool new wrote no header)")
        os.pwrite(fd, script.ljust(_LAUNCH_LEN, b"\0"), 0)
    finally:
        os.close(fd)


def add_object_argv(sif: str, source: str, datatype: int, name: str | None = None) -> list[str]:
    """`siftool add` of a metadata object (def file, JSON) in group 1, named `name` if given."""
    argv = ["siftool", "add", "--datatype", str(datatype), "--groupid", str(GROUP)]
    if name:
        argv += ["--filename", name]
    return [*argv, sif, source]


def add_partition_argv(sif: str, squashfs: str, arch: str) -> list[str]:
    """`siftool add` of the squashfs as the primary system partition, in group 1."""
    return [
        "siftool",
        "add",
        "--datatype",
        str(DATATYPE_PARTITION),
        "--groupid",
        str(GROUP),
        "--parttype",
        str(PARTTYPE_PRIMARY_SYSTEM),
        "--partfs",
        str(PARTFS_SQUASHFS),
        "--partarch",
        str(arch_code(arch)),
        sif,
        squashfs,
    ]
