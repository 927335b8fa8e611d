"""Every job into every kind of cache, for real, checked with the tools and imgcache's probe.

The builtin pipeline (skopeo, umoci, mksquashfs, siftool) and podman run for
real against the test registry; apptainer and enroot are not installable here,
so their command lines are tested in tests/unit/test_jobs_argv.py.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory import naming, refs
from imgcache.backends.inventory.model import CacheKind, Format
from imgcache.backends.jobs.states import JobRequest, JobState
from imgcache.backends.tools.run import run
from tests.builders import make_oci_archive, make_sif, make_squashfs
from tests.integration.conftest import META_REF
from tests.integration.helpers import (
    all_done,
    cli,
    leftovers,
    probed,
    run_jobs,
    sif_partition,
    squash_cat,
    squash_list,
    squash_super,
)

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("registry")]


def _cache(settings, kind: CacheKind) -> CacheSpec:
    return next(c for c in settings.caches if c.kind is kind)


def test_builtin_pull_writes_a_sif_apptainer_would(caches) -> None:
    cache = _cache(caches, CacheKind.SINGULARITY)
    [status] = run_jobs(caches, JobRequest("pull", META_REF, cache, backend="builtin"))
    all_done([status])
    assert status.backend.startswith("builtin")
    target = os.path.join(cache.path, META_REF)
    assert status.target == target
    listing = run(["siftool", "list", target], capture=True).stdout.decode()
    assert "Def.FILE" in listing and listing.count("JSON.Generic") == 2
    assert "FS (Squashfs/*System/amd64)" in listing
    result = probed(target)
    assert result.format is Format.SIF and not result.corrupt
    assert result.sif.primary.arch == "amd64"
    offset = sif_partition(target)
    sb = squash_super(target, offset)
    assert "Compression zstd" in sb and "Block size 1048576" in sb
    files = squash_list(target, offset)
    for member in (
        ".singularity.d/env/10-docker2singularity.sh",
        ".singularity.d/runscript",
        ".singularity.d/labels.json",
        ".singularity.d/actions/run",
        "opt/app/run",
    ):
        assert f"squashfs-root/{member}" in files
    assert "etc/remove-me" not in files  # the whiteout of the last layer was applied
    env = squash_cat(target, ".singularity.d/env/10-docker2singularity.sh", offset)
    assert 'export PATH="/opt/app:/usr/bin:/bin"' in env
    assert 'export GREETING="${GREETING:-"hello world"}"' in env
    runscript = squash_cat(target, ".singularity.d/runscript", offset)
    assert 'OCI_ENTRYPOINT=\'"/opt/app/run" "--flag"\'' in runscript
    labels = json.loads(squash_cat(target, ".singularity.d/labels.json", offset))
    assert labels["org.example.team"] == "hpc"
    assert labels["org.label-schema.usage.singularity.deffile.from"] == f"docker.io/{META_REF}"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755  # x where r: ./image.sif runs
    assert not leftovers(cache.path)
    with open(status.log_path) as f:
        log = f.read()
    assert "skopeo" in log and "umoci raw unpack" in log and "siftool add" in log


def test_builtin_import_writes_an_enroot_image(caches) -> None:
    cache = _cache(caches, CacheKind.ENROOT)
    [status] = run_jobs(caches, JobRequest("import", META_REF, cache, backend="builtin"))
    all_done([status])
    target = os.path.join(cache.path, "imgcache-test+meta+1.sqsh")
    assert status.target == target
    assert probed(target).format is Format.SQUASHFS
    sb = squash_super(target)
    assert "Compression zstd" in sb and "Block size 1048576" in sb
    files = squash_list(target)
    assert "etc/remove-me" not in files
    assert all(" root/root " in line for line in files.splitlines() if line)  # -all-root
    assert "squashfs-root/dev/" not in files
    assert squash_cat(target, "etc/environment").splitlines() == [
        "PATH=/opt/app:/usr/bin:/bin",
        "GREETING=hello world",
        'QUOTE=a"b$c',
    ]
    assert squash_cat(target, "etc/fstab") == (
        "${ENROOT_ROOTFS}/data /data none x-create=dir,bind,rw,nosuid,nodev\n"
    )
    rc = squash_cat(target, "etc/rc")
    assert "# org.example.team hpc" in rc
    assert 'cd "/work" && unset OLDPWD || exit 1' in rc
    assert "exec '/opt/app/run' '--flag' \"$@\"" in rc
    assert "exec '/opt/app/run' '--flag' 'serve' 'it'\\''s'" in rc
    assert "squashfs-root/work" in files
    assert not leftovers(cache.path)


@pytest.mark.parametrize("backend", ["builtin", "runtime"])
def test_save_writes_an_oci_archive(caches, backend) -> None:
    if backend == "runtime" and not os.path.exists("/usr/bin/podman"):
        pytest.skip("needs podman")
    cache = _cache(caches, CacheKind.PODMAN)
    [status] = run_jobs(caches, JobRequest("save", META_REF, cache, backend=backend))
    all_done([status])
    assert status.backend == ("podman" if backend == "runtime" else "builtin (skopeo)")
    target = os.path.join(cache.path, "imgcache-test+meta+1.tar")
    result = probed(target)
    assert result.format is Format.OCI_ARCHIVE
    assert result.archive.refs == (f"docker.io/{META_REF}",)
    info = json.loads(run(["skopeo", "inspect", f"oci-archive:{target}"], capture=True).stdout)
    assert info["Labels"]["org.example.team"] == "hpc"
    assert not leftovers(cache.path)


def test_present_images_are_skipped_and_force_replaces(caches) -> None:
    cache = _cache(caches, CacheKind.ENROOT)
    request = JobRequest("import", META_REF, cache, backend="builtin")
    all_done(run_jobs(caches, request))
    target = os.path.join(cache.path, "imgcache-test+meta+1.sqsh")
    inode = os.stat(target).st_ino
    [again] = run_jobs(caches, request)
    assert again.message == "already present" and os.stat(target).st_ino == inode
    [forced] = run_jobs(caches, replace(request, replace=True))
    assert forced.message.startswith("done (replaced")
    assert os.stat(target).st_ino != inode


def test_a_broken_file_at_the_target_is_replaced(caches) -> None:
    cache = _cache(caches, CacheKind.ENROOT)
    target = os.path.join(cache.path, "imgcache-test+meta+1.sqsh")
    with open(target, "wb") as f:
        f.write(b"hsqs" + b"\0" * 200)  # a squashfs superblock that lies
    [status] = run_jobs(caches, JobRequest("import", META_REF, cache, backend="builtin"))
    all_done([status])
    assert not probed(target).corrupt


def test_modes_come_from_the_config(caches) -> None:
    settings = replace(caches, file_mode=0o640, dir_mode=0o750)
    cache = _cache(settings, CacheKind.SINGULARITY)
    all_done(run_jobs(settings, JobRequest("pull", META_REF, cache, backend="builtin")))
    # A SIF gets an execute bit for each read bit, as apptainer pull leaves it.
    assert stat.S_IMODE(os.stat(os.path.join(cache.path, META_REF)).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(os.path.join(cache.path, "imgcache-test")).st_mode) == 0o750


def test_direct_registry_refs_and_bad_refs(caches, seeded) -> None:
    cache = _cache(caches, CacheKind.SINGULARITY)
    good, bad, escape = run_jobs(
        caches,
        JobRequest("pull", seeded.direct_ref, cache, backend="builtin"),
        JobRequest("pull", "Not A Ref", cache, backend="builtin"),
        JobRequest("pull", "../../etc/passwd", cache, backend="builtin"),
    )
    all_done([good])
    assert os.path.isfile(os.path.join(cache.path, seeded.direct_ref))
    assert bad.state is JobState.FAILED and "lowercase" in bad.message
    assert escape.state is JobState.FAILED
    with open(escape.log_path) as f:
        assert "$ " not in f.read()  # refused before any tool ran


def test_a_missing_tag_fails_in_one_line(caches) -> None:
    cache = _cache(caches, CacheKind.SINGULARITY)
    [status] = run_jobs(caches, JobRequest("pull", "imgcache-test/meta:nope", cache))
    assert status.state is JobState.FAILED
    assert status.message.startswith("skopeo: ") and "\n" not in status.message
    assert "manifest unknown" in status.message
    assert not leftovers(cache.path) and not os.listdir(os.environ["IMGCACHE_TMPDIR"])


# --- add ---------------------------------------------------------------------------


def test_add_puts_a_sif_under_its_ref(caches, tmp_path) -> None:
    cache = _cache(caches, CacheKind.SINGULARITY)
    sif = make_sif(tmp_path / "src" / "my.sif")
    [status] = run_jobs(caches, JobRequest("add", "hpc/tools:2.1", cache, source=str(sif)))
    all_done([status])
    target = os.path.join(cache.path, "hpc/tools:2.1")
    assert Path(target).read_bytes() == sif.read_bytes()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_add_refuses_what_the_cache_cannot_hold(caches, tmp_path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    sqsh = make_squashfs(tmp_path / "img.sqsh")
    statuses = run_jobs(
        caches,
        JobRequest("add", "a/b:1", _cache(caches, CacheKind.SINGULARITY), source=str(text)),
        JobRequest("add", "a/b:1", _cache(caches, CacheKind.PODMAN), source=str(sqsh)),
        JobRequest("add", "a/b:1", _cache(caches, CacheKind.ENROOT), source=str(sqsh)),
    )
    assert [s.state for s in statuses] == [JobState.FAILED, JobState.FAILED, JobState.DONE]
    assert "is not a sif or squashfs image" in statuses[0].message
    assert os.path.isfile(os.path.join(_cache(caches, CacheKind.ENROOT).path, "a+b+1.sqsh"))


def test_add_relabels_an_archive_that_names_another_ref(caches, tmp_path) -> None:
    cache = _cache(caches, CacheKind.PODMAN)
    archive = make_oci_archive(tmp_path / "x.tar", "example.org/other:1")
    [status] = run_jobs(caches, JobRequest("add", "hpc/app:3", cache, source=str(archive)))
    all_done([status])
    target = os.path.join(cache.path, naming.podman_filename(refs.parse("hpc/app:3")))
    assert probed(target).archive.refs == ("docker.io/hpc/app:3",)


# --- the command line ----------------------------------------------------------------


def test_cli_pulls_the_defaults_by_their_real_names(tmp_path, seeded) -> None:
    root = tmp_path / "sif"
    root.mkdir()
    result = cli(
        "pull", "--cpu", "--rocm", "--cache", f"singularity:{root}", "--backend", "builtin"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    for env in ("cpu", "rocm"):
        name = seeded.defaults[env]
        assert probed(root / name).format is Format.SIF
        assert f"pull {name} -> {root / name}: done" in result.stdout
    again = cli("pull", "--cpu", "--cache", f"singularity:{root}")
    assert again.returncode == 0 and "already present" in again.stdout


def test_cli_needs_a_cache_choice_and_reports_failures(tmp_path) -> None:
    for kind in ("singularity", "enroot"):
        (tmp_path / kind).mkdir()
    both = [
        "--cache",
        f"singularity:{tmp_path}/singularity",
        "--cache",
        f"enroot:{tmp_path}/enroot",
    ]
    usage = cli("pull", META_REF, *both)
    assert usage.returncode == 2 and "several caches fit" in usage.stderr
    assert f"enroot:{tmp_path}/enroot" in usage.stderr
    failed = cli("pull", "imgcache-test/meta:nope", *both, "--to", "enroot")
    assert failed.returncode == 1 and ": failed: skopeo: " in failed.stdout
    ok = cli("add", str(make_squashfs(tmp_path / "i.sqsh")), "x/y:1", *both, "--to", "enroot")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "enroot" / "x+y+1.sqsh").is_file()
