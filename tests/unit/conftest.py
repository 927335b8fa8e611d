"""Session fixtures for the probe tests: real images built once per test session.

Every fixture skips (with the reason) when the tool that builds it is missing;
CI installs them all. Fixture names start with `probe_` so they cannot clash with
fixtures other test modules define.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders import (
    DATATYPE_DEFFILE,
    DATATYPE_LABELS,
    DEFFILE,
    LABELS,
    have,
    make_docker_archive,
    make_oci_archive,
    make_oci_layout,
    make_oci_sif,
    make_rootfs,
    make_sif,
    make_sif_objects,
    make_squashfs,
)

PROBE_REF = "registry.example.com/hpc/pytorch:24.01-py3"


def _need(*tools: str) -> None:
    if not have(*tools):
        pytest.skip(f"needs {', '.join(tools)} (not installed here)")


@pytest.fixture(scope="session")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the session's probe fixtures."""
    return tmp_path_factory.mktemp("probe")


@pytest.fixture(scope="session")
def probe_rootfs(probe_dir: Path) -> Path:
    """A small root filesystem tree shared by every squashfs the tests build."""
    return make_rootfs(probe_dir / "rootfs")


@pytest.fixture(scope="session")
def probe_squashfs(probe_dir: Path, probe_rootfs: Path) -> Path:
    """A zstd squashfs made by mksquashfs with default options."""
    _need("mksquashfs")
    return make_squashfs(probe_dir / "image.sqsh", rootfs=probe_rootfs)


@pytest.fixture(scope="session")
def probe_sif(probe_dir: Path, probe_squashfs: Path) -> Path:
    """A SIF like `singularity build` makes: def file, labels, primary squashfs."""
    _need("siftool")
    return make_sif(probe_dir / "image.sif", squashfs=probe_squashfs)


@pytest.fixture(scope="session")
def probe_sif_full(probe_dir: Path, probe_squashfs: Path) -> Path:
    """A signed SIF with two extra data partitions."""
    _need("siftool", "mksquashfs")
    return make_sif(
        probe_dir / "full.sif", squashfs=probe_squashfs, signature=True, extra_partitions=2
    )


@pytest.fixture(scope="session")
def probe_oci_layout(probe_dir: Path) -> Path:
    """An OCI layout with a two-layer image tagged `latest`, built with umoci."""
    _need("umoci")
    return make_oci_layout(probe_dir / "layout", layers=2)


@pytest.fixture(scope="session")
def probe_oci_archive(probe_dir: Path, probe_oci_layout: Path) -> Path:
    """An oci-archive of the layout's image, written by skopeo with ref PROBE_REF."""
    _need("skopeo")
    return make_oci_archive(probe_dir / "image.oci.tar", PROBE_REF, layout=probe_oci_layout)


@pytest.fixture(scope="session")
def probe_docker_archive(probe_dir: Path, probe_oci_layout: Path) -> Path:
    """A docker-archive of the layout's image, written by skopeo with tag PROBE_REF."""
    _need("skopeo")
    return make_docker_archive(probe_dir / "image.docker.tar", PROBE_REF, layout=probe_oci_layout)


#: The reference the OCI-SIF fixture's root index carries.
OCI_SIF_REF = "docker.io/library/alpine:3.19"


@pytest.fixture(scope="session")
def probe_oci_sif(probe_dir: Path, probe_oci_layout: Path) -> Path:
    """An OCI-SIF as SingularityCE 4 `pull --oci` writes it: blobs and an OCI root index."""
    _need("siftool", "skopeo")
    return make_oci_sif(probe_dir / "oci.sif", OCI_SIF_REF, layout=probe_oci_layout)


@pytest.fixture(scope="session")
def probe_sif_no_rootfs(probe_dir: Path) -> Path:
    """A valid SIF with a def file and labels and no partition: no root filesystem."""
    _need("siftool")
    objects = [(DATATYPE_DEFFILE, DEFFILE), (DATATYPE_LABELS, LABELS)]
    return make_sif_objects(probe_dir / "no-rootfs.sif", objects)
