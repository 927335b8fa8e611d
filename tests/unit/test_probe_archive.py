"""The archive probe against what `skopeo inspect` says about the same archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from os import urandom
from pathlib import Path

import pytest

from imgcache.backends.inventory.model import Format
from imgcache.backends.inventory.probe import MAX_HEADER_BYTES, probe_fileobj, probe_path
from imgcache.backends.inventory.probe.archive import DOCKER_LAYER_TYPE
from imgcache.backends.tools.run import run
from tests.builders import (
    have,
    make_docker_archive,
    make_oci_archive,
    make_oci_layout,
    truncated_copy,
)
from tests.unit.conftest import PROBE_REF

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"

tools = pytest.mark.tools
needs_umoci_skopeo = pytest.mark.skipif(
    not have("umoci", "skopeo"), reason="needs umoci and skopeo"
)


def skopeo_inspect(transport_path: str, *, raw: bool = False) -> dict:
    argv = ["skopeo", "--insecure-policy", "inspect", *(["--raw"] if raw else []), transport_path]
    return json.loads(run(argv, capture=True).stdout)


def tar_of(members: dict[str, bytes], *, prefix: str = "") -> bytes:
    """A tar (as Python's tarfile writes it) holding `members` in the given order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def layout_members(layout: Path) -> dict[str, bytes]:
    """Every file of an OCI layout, by its path inside the layout."""
    return {
        str(p.relative_to(layout)): p.read_bytes() for p in sorted(layout.rglob("*")) if p.is_file()
    }


def blob(members: dict[str, bytes], doc: object) -> str:
    """Add `doc` as a JSON blob; return its digest."""
    data = json.dumps(doc).encode()
    digest = hashlib.sha256(data).hexdigest()
    members[f"blobs/sha256/{digest}"] = data
    return f"sha256:{digest}"


def probe_bytes(data: bytes):
    return probe_fileobj(io.BytesIO(data), len(data))


# Real archives from skopeo.


@tools
def test_oci_archive_matches_skopeo(probe_oci_archive):
    result = probe_path(str(probe_oci_archive))
    assert result.format is Format.OCI_ARCHIVE
    assert result.error is None and result.archive is not None
    raw = skopeo_inspect(f"oci-archive:{probe_oci_archive}", raw=True)
    inspected = skopeo_inspect(f"oci-archive:{probe_oci_archive}")
    assert result.archive.refs == (PROBE_REF,)
    assert result.archive.manifests == 1
    assert [(x.media_type, x.size, x.digest) for x in result.archive.layers] == [
        (x["mediaType"], x["size"], x["digest"]) for x in raw["layers"]
    ]
    assert [x.digest for x in result.archive.layers] == inspected["Layers"]
    assert len(result.archive.layers) == 2


@tools
def test_docker_archive_matches_skopeo(probe_docker_archive):
    result = probe_path(str(probe_docker_archive))
    assert result.format is Format.DOCKER_ARCHIVE
    assert result.error is None and result.archive is not None
    raw = skopeo_inspect(f"docker-archive:{probe_docker_archive}", raw=True)
    assert result.archive.refs == (PROBE_REF,)
    assert result.archive.manifests == 1
    # skopeo's synthesised manifest names the same layer files by digest and size.
    assert [(x.size, x.digest) for x in result.archive.layers] == [
        (x["size"], x["digest"]) for x in raw["layers"]
    ]
    assert {x.media_type for x in result.archive.layers} == {DOCKER_LAYER_TYPE}


@tools
@needs_umoci_skopeo
def test_layer_count_follows_the_image(tmp_path):
    layout = make_oci_layout(tmp_path / "layout", layers=4)
    archive = make_oci_archive(tmp_path / "four.tar", "four:layers", layout=layout)
    result = probe_path(str(archive))
    assert result.archive is not None
    assert len(result.archive.layers) == 4
    assert result.archive.refs == ("four:layers",)


@tools
@needs_umoci_skopeo
def test_archives_read_only_headers(tmp_path):
    # A 2 MiB incompressible file makes the layer far larger than the budget.
    layout = make_oci_layout(tmp_path / "layout", files={"data/blob.bin": urandom(2 * 1024**2)})
    archive = make_oci_archive(tmp_path / "big.tar", "big:1", layout=layout)
    result = probe_path(str(archive))
    assert result.error is None and result.archive is not None
    assert result.archive.layers[0].size > 2 * 1024**2
    assert result.bytes_read < 16 * 1024


@tools
@needs_umoci_skopeo
def test_archives_with_more_layers_than_the_walk_can_reach_show_their_refs(tmp_path):
    # A docker-archive spends four tar members on each layer: at 40 layers the
    # header walk runs out of budget long before manifest.json, which skopeo
    # (like docker and podman) writes last. The end of the file holds it.
    layout = make_oci_layout(tmp_path / "layout", layers=40)
    docker = make_docker_archive(tmp_path / "docker.tar", "example.org/many:40", layout=layout)
    oci = make_oci_archive(tmp_path / "oci.tar", "example.org/many:40", layout=layout)
    truth = skopeo_inspect(f"docker-archive:{docker}")
    assert len(truth["Layers"]) == 40
    result = probe_path(str(docker))
    assert result.format is Format.DOCKER_ARCHIVE and result.error is None
    assert result.archive is not None
    assert result.archive.refs == ("example.org/many:40",)
    assert len(result.archive.layers) == 40
    assert result.bytes_read <= MAX_HEADER_BYTES
    assert result.note is not None and "at the end" in result.note
    # The same image as an oci-archive needs no help: one member a layer.
    assert probe_path(str(oci)).archive.refs == ("example.org/many:40",)


@tools
@needs_umoci_skopeo
def test_a_big_archive_cut_short_shows_no_refs_and_does_not_fail(tmp_path):
    layout = make_oci_layout(tmp_path / "layout", layers=40)
    docker = make_docker_archive(tmp_path / "docker.tar", "example.org/many:40", layout=layout)
    size = docker.stat().st_size
    for cut_at in (size - 1024, size - 3000, size - 5000):
        cut = truncated_copy(docker, tmp_path / f"cut{cut_at}.tar", cut_at)
        result = probe_path(str(cut))
        assert result.format is Format.DOCKER_ARCHIVE, cut_at
        assert result.archive is None or not result.archive.refs, cut_at
        assert result.bytes_read <= MAX_HEADER_BYTES, cut_at


@tools
def test_truncated_oci_archive_is_corrupt(tmp_path, probe_oci_archive):
    for length in (1024, 2000, probe_oci_archive.stat().st_size // 2):
        cut = truncated_copy(probe_oci_archive, tmp_path / f"cut{length}.tar", length)
        result = probe_path(str(cut))
        assert result.format is Format.OCI_ARCHIVE, length
        assert result.error is not None and "truncated" in result.error, length


@tools
def test_truncated_docker_archive_is_corrupt(tmp_path, probe_docker_archive):
    with tarfile.open(probe_docker_archive) as tar:
        manifest = tar.getmember("manifest.json")
    cut = truncated_copy(probe_docker_archive, tmp_path / "cut.tar", manifest.offset_data + 10)
    result = probe_path(str(cut))
    assert result.format is Format.DOCKER_ARCHIVE
    assert result.error == (
        f"member manifest.json ends at {manifest.offset_data + manifest.size}, "
        f"past the end of the file at {manifest.offset_data + 10}: truncated"
    )


@tools
def test_archive_cut_before_its_index(probe_oci_archive):
    data = probe_oci_archive.read_bytes()
    with tarfile.open(probe_oci_archive) as tar:
        index = tar.getmember("index.json")
    result = probe_bytes(data[: index.offset])
    assert result.format is Format.OCI_ARCHIVE
    assert result.error is not None
    assert result.error.startswith("archive ends at") and "truncated" in result.error


# Not images.


def test_tar_of_a_readme_is_unknown():
    result = probe_bytes(tar_of({"README.md": b"# hello\n", "src/main.c": b"int main;\n"}))
    assert (result.format, result.error) == (Format.UNKNOWN, None)
    assert result.note == "tar archive that is not an image"


def test_tar_with_some_other_index_json_is_unknown():
    result = probe_bytes(tar_of({"index.json": b'{"pages": []}', "index.html": b"<html>"}))
    assert (result.format, result.error) == (Format.UNKNOWN, None)


def test_gzip_data_is_unknown_with_a_note():
    data = gzip.compress(tar_of({"oci-layout": b"{}"}))
    result = probe_bytes(data)
    assert (result.format, result.error) == (Format.UNKNOWN, None)
    assert result.note == "compressed data; imgcache reads headers of plain tar archives only"


@pytest.mark.parametrize(
    ("data", "note"),
    [
        (b"", "empty file"),
        (b"# README\n\nnot an image\n", "no SIF, squashfs or tar header"),
    ],
)
def test_plain_files_are_unknown(data, note):
    result = probe_bytes(data)
    assert (result.format, result.error, result.note) == (Format.UNKNOWN, None, note)
    assert result.bytes_read == len(data)


# Hand-made archives for what skopeo does not write.


@pytest.fixture(scope="module")
def layout_files(tmp_path_factory) -> dict[str, bytes]:
    if not have("umoci"):
        pytest.skip("needs umoci")
    layout = make_oci_layout(tmp_path_factory.mktemp("layout") / "layout")
    return layout_members(layout)


def index_of(members: dict[str, bytes]) -> dict:
    return json.loads(members["index.json"])


@tools
def test_dot_slash_member_names(layout_files):
    result = probe_bytes(tar_of(layout_files, prefix="./"))
    assert result.format is Format.OCI_ARCHIVE
    assert result.error is None and result.archive is not None
    assert result.archive.refs == ("latest",)


@tools
def test_nested_index(layout_files):
    members = dict(layout_files)
    top = index_of(members)
    nested = blob(members, {"schemaVersion": 2, "manifests": top["manifests"]})
    size = len(members[f"blobs/sha256/{nested.split(':')[1]}"])
    annotations = {"org.opencontainers.image.ref.name": "multi:1"}
    members["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": INDEX_TYPE,
                    "digest": nested,
                    "size": size,
                    "annotations": annotations,
                }
            ],
        }
    ).encode()
    result = probe_bytes(tar_of(members))
    assert result.error is None and result.archive is not None
    assert result.archive.refs == ("multi:1",)
    assert result.archive.manifests == 1
    assert len(result.archive.layers) == 1


@tools
def test_docker_25_archive_has_both_indexes(layout_files):
    members = dict(layout_files)
    top = index_of(members)
    top["manifests"][0]["annotations"] = {
        "io.containerd.image.name": "docker.io/library/app:2",
        "org.opencontainers.image.ref.name": "2",
    }
    members["index.json"] = json.dumps(top).encode()
    manifest_digest = top["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(members[f"blobs/sha256/{manifest_digest}"])
    layers = [f"blobs/sha256/{x['digest'].split(':')[1]}" for x in manifest["layers"]]
    config = f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"
    members["manifest.json"] = json.dumps(
        [{"Config": config, "RepoTags": ["app:2"], "Layers": layers}]
    ).encode()
    result = probe_bytes(tar_of(members))
    assert result.format is Format.DOCKER_ARCHIVE
    assert result.error is None and result.archive is not None
    assert result.archive.refs == ("app:2", "docker.io/library/app:2")
    assert [x.digest for x in result.archive.layers] == [x["digest"] for x in manifest["layers"]]


@tools
@pytest.mark.parametrize(
    ("index", "reason"),
    [
        (b"{not json", "index.json is not valid JSON: "),
        (b"[]", "index.json is not an OCI image index"),
        (b'{"manifests": {}}', "index.json is not an OCI image index"),
        (b'{"manifests": [7]}', "index.json: manifests[0] is not a JSON object"),
        (b'{"manifests": [{"digest": "sha256:00", "size": -1}]}', "manifests[0] has no valid size"),
        (
            b'{"manifests": [{"digest": "../../etc", "size": 1}]}',
            "manifests[0] has no valid digest",
        ),
        (
            b'{"manifests": [{"digest": "sha256:' + b"ab" * 32 + b'", "size": 1}]}',
            f"index.json names sha256:{'ab' * 32}, which the archive does not contain",
        ),
    ],
)
def test_broken_index_is_corrupt(layout_files, index, reason):
    members = dict(layout_files)
    members["index.json"] = index
    result = probe_bytes(tar_of(members))
    assert result.format is Format.OCI_ARCHIVE
    assert result.error is not None and reason in result.error


@tools
def test_manifest_blob_of_the_wrong_size_is_corrupt(layout_files):
    members = dict(layout_files)
    top = index_of(members)
    top["manifests"][0]["size"] += 1
    members["index.json"] = json.dumps(top).encode()
    result = probe_bytes(tar_of(members))
    assert result.error is not None and "index.json says" in result.error


@tools
def test_oci_layout_without_index_is_corrupt(layout_files):
    members = {k: v for k, v in layout_files.items() if k != "index.json"}
    members_tar = tar_of(members)
    result = probe_bytes(members_tar)
    assert (result.format, result.error) == (
        Format.OCI_ARCHIVE,
        "archive ends before index.json: truncated?",
    )


def test_broken_docker_manifest_is_corrupt():
    layer = "ab" * 32 + ".tar"
    members = {layer: b"x" * 10, "manifest.json": b'[{"Config": 1, "Layers": []}]'}
    result = probe_bytes(tar_of(members))
    assert result.format is Format.DOCKER_ARCHIVE
    assert result.error == "manifest.json: [0] has no Config"


def test_docker_manifest_naming_a_missing_layer():
    manifest = [{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["missing/layer.tar"]}]
    members = {"c.json": b"{}", "manifest.json": json.dumps(manifest).encode()}
    result = probe_bytes(tar_of(members))
    assert result.format is Format.DOCKER_ARCHIVE
    assert result.error == "manifest.json names layer missing/layer.tar, which the archive lacks"
