"""The scanner on caches made with the real tools: what a user sees in the list.

Every file is listed with the format and reference its header and name give;
an unchanged cache is rescanned without reading a header; a full scan costs one
`lstat` per entry; `rescan(dirs)` reports exactly what changed and ends where a
fresh full scan would; unreadable directories, symlinks, the trash and private
directories show up the way the list explains them.
"""

from __future__ import annotations

import gc
import grp
import json
import os
import pwd
import shutil
import stat
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec
from imgcache.backends.inventory import scan
from imgcache.backends.inventory.model import CacheKind, Format, Image
from imgcache.backends.inventory.scan import Change, ProbeMemo, Scanner
from tests.builders import have, make_squashfs
from tests.unit.conftest import PROBE_REF

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        not have("mksquashfs", "siftool", "skopeo", "umoci"),
        reason="needs mksquashfs, siftool, skopeo and umoci",
    ),
]

SIF_REF = "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730"


@pytest.fixture(scope="module")
def enroot_default(tmp_path_factory: pytest.TempPathFactory, probe_rootfs: Path) -> Path:
    """A squashfs as enroot makes it by default: `-comp lzo -noD`."""
    out = tmp_path_factory.mktemp("scan") / "enroot.sqsh"
    return make_squashfs(out, comp="lzo", options=["-noD"], rootfs=probe_rootfs)


@pytest.fixture(scope="module")
def tiny_squashfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A squashfs of one small file: cheap to copy a hundred times."""
    out = tmp_path_factory.mktemp("tiny")
    (out / "tree").mkdir()
    (out / "tree" / "hello.txt").write_text("hello\n")
    return make_squashfs(out / "tiny.sqsh", rootfs=out / "tree")


class Cache:
    """A singularity, an enroot and a podman cache under one directory."""

    def __init__(self, base: Path) -> None:
        self.sing = base / "singularity"
        self.enroot = base / "enroot"
        self.podman = base / "podman"
        for d in (self.sing, self.enroot, self.podman):
            d.mkdir(parents=True, exist_ok=True)
        self.specs = [
            CacheSpec(CacheKind.SINGULARITY, str(self.sing)),
            CacheSpec(CacheKind.ENROOT, str(self.enroot)),
            CacheSpec(CacheKind.PODMAN, str(self.podman)),
        ]

    def put(self, source: Path, dest: Path) -> Path:
        """Copy `source` to `dest` (a new inode), making directories on the way."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        return dest


@pytest.fixture
def cache(tmp_path, probe_sif, probe_squashfs, probe_oci_archive, enroot_default) -> Cache:
    """A small cache in the three layouts, one file of every kind an admin keeps."""
    c = Cache(tmp_path)
    c.put(probe_sif, c.sing / SIF_REF)
    c.put(probe_sif, c.sing / "nvcr.io/nvidia/pytorch:24.01-py3.sif")
    c.put(probe_squashfs, c.sing / "alpine:3.19")
    c.put(probe_sif, c.sing / ".imgcache-trash" / "old:1")
    c.put(enroot_default, c.enroot / "nvidia+pytorch+25.09-py3.sqsh")
    (c.enroot / "README.txt").write_text("images for the pyxis jobs\n")
    c.put(probe_oci_archive, c.podman / "pytorch.oci.tar")
    return c


def listing(scanner: Scanner) -> dict[str, tuple[Format, str | None]]:
    """Path (relative to the cache's parent directory) -> (format, ref)."""
    out = {}
    for image in scanner.images():
        rel = os.path.relpath(image.path, os.path.dirname(image.root))
        out[rel] = (image.probe.format, image.ref)
    return out


def state(images: list[Image]) -> dict[str, tuple[object, ...]]:
    """What a user sees of each file, minus the access time a header read moves."""
    return {
        i.path: (i.probe, i.ref, i.ref_error, i.stat.key, i.stat.mode, i.blocked_by) for i in images
    }


def fresh(specs: list[CacheSpec]) -> list[Image]:
    """A full scan by a scanner that remembers nothing."""
    scanner = Scanner(specs, memo=ProbeMemo())
    scanner.scan()
    return scanner.images()


# --- listing ---------------------------------------------------------------------


def test_full_scan_lists_every_file_with_its_format_and_reference(cache):
    scanner = Scanner(cache.specs)
    change, stats = scanner.scan()
    assert listing(scanner) == {
        f"singularity/{SIF_REF}": (Format.SIF, f"docker.io/{SIF_REF}"),
        "singularity/nvcr.io/nvidia/pytorch:24.01-py3.sif": (
            Format.SIF,
            "nvcr.io/nvidia/pytorch:24.01-py3",
        ),
        "singularity/alpine:3.19": (Format.SQUASHFS, "docker.io/library/alpine:3.19"),
        "enroot/nvidia+pytorch+25.09-py3.sqsh": (Format.SQUASHFS, "nvidia/pytorch:25.09-py3"),
        "enroot/README.txt": (Format.UNKNOWN, None),
        "podman/pytorch.oci.tar": (Format.OCI_ARCHIVE, PROBE_REF),
    }
    by_name = {os.path.basename(i.path): i for i in scanner.images()}
    enroot = by_name["nvidia+pytorch+25.09-py3.sqsh"]
    assert (enroot.probe.compression, enroot.probe.data_compressed) == ("lzo", False)
    sif = by_name["pytorch:24.01-py3.sif"]
    assert sif.probe.compression == "zstd" and sif.probe.sif.arch == "amd64"
    assert by_name["README.txt"].ref_error == "enroot images are named <repository+tag>.sqsh"
    # Size, ages, mode and owner as `ls -l` shows them; each file under its own cache.
    for image in scanner.images():
        st = os.lstat(image.path)
        assert (image.stat.size, image.stat.mtime, image.stat.atime, image.stat.mode) == (
            st.st_size,
            st.st_mtime,
            st.st_atime,
            st.st_mode,
        )
        assert (image.stat.dev, image.stat.ino, image.stat.ctime) == (
            st.st_dev,
            st.st_ino,
            st.st_ctime,
        )
        assert (image.owner, image.group) == (
            pwd.getpwuid(st.st_uid).pw_name,
            grp.getgrgid(st.st_gid).gr_name,
        )
        assert image.path.startswith(image.root + "/") and image.blocked_by is None
    assert {i.cache for i in scanner.images() if i.path.startswith(str(cache.enroot))} == {
        CacheKind.ENROOT
    }
    assert change.added == {i.path for i in scanner.images()}
    assert not change.changed and not change.removed
    assert (stats.files, stats.probed, stats.memo_hits) == (6, 6, 0)
    assert stats.header_bytes == sum(i.probe.bytes_read for i in scanner.images()) > 0
    assert scanner.problems() == []


def test_scanning_does_not_make_an_image_look_recently_read(cache):
    # The stale rule goes by the access time: reading headers must not move it,
    # or a daily `imgcache list` would keep every image fresh forever.
    path = cache.sing / SIF_REF
    last_read = path.stat().st_mtime - 200 * 86400
    os.utime(path, (last_read, path.stat().st_mtime))
    for _ in range(2):
        scanner = Scanner(cache.specs, memo=ProbeMemo())  # reads every header
        _, stats = scanner.scan()
        assert stats.probed == 6
        image = next(i for i in scanner.images() if i.path == str(path))
        assert image.stat.atime == last_read
    assert os.stat(path).st_atime == last_read


def test_the_trash_directory_is_not_listed(cache):
    scanner = Scanner(cache.specs)
    scanner.scan()
    assert not [i.path for i in scanner.images() if ".imgcache-trash" in i.path]


def test_symlinks_are_listed_but_not_followed(cache, probe_sif):
    target = cache.put(probe_sif, cache.sing / "hpc" / "lammps:2024")
    (cache.sing / "lammps:latest").symlink_to("hpc/lammps:2024")
    (cache.sing / "mirror").symlink_to("hpc")
    scanner = Scanner(cache.specs)
    scanner.scan()
    images = {i.path: i for i in scanner.images()}
    link = images[str(cache.sing / "lammps:latest")]
    assert link.probe.format is Format.UNKNOWN
    assert link.probe.note == "symbolic link to hpc/lammps:2024; imgcache does not follow links"
    assert link.probe.bytes_read == 0
    assert images[str(cache.sing / "mirror")].probe.note.startswith("symbolic link to hpc;")
    # The image behind the links is listed once, under its own path.
    assert images[str(target)].probe.format is Format.SIF
    assert not [p for p in images if p.startswith(str(cache.sing / "mirror") + "/")]


def test_files_under_a_0700_directory_are_blocked_for_other_users(cache, probe_sif):
    private = cache.sing / "team"
    inner = cache.put(probe_sif, private / "deep" / "model:1")
    private.chmod(0o700)
    scanner = Scanner(cache.specs)
    scanner.scan()
    images = {i.path: i for i in scanner.images()}
    # Below the closed directory everything is blocked by it, however deep.
    assert images[str(inner)].blocked_by == str(private)
    assert images[str(cache.sing / SIF_REF)].blocked_by is None
    # With a looser policy (dir_mode 0o700: only the owner needs in) nothing is blocked.
    loose = Scanner(cache.specs, dir_mode=0o700)
    loose.scan()
    assert {i.blocked_by for i in loose.images()} == {None}


# --- cost ------------------------------------------------------------------------


def test_rescan_of_an_unchanged_cache_reads_no_header(cache):
    memo = ProbeMemo()
    scanner = Scanner(cache.specs, memo=memo)
    scanner.scan()
    first = state(scanner.images())
    misses, read = memo.misses, memo.bytes_read
    assert misses == 6 and read > 0

    change, stats = scanner.scan()
    assert not change
    assert (stats.probed, stats.header_bytes, stats.files, stats.memo_hits) == (0, 0, 6, 6)
    change, stats = scanner.rescan([s.path for s in cache.specs])
    assert not change and (stats.probed, stats.header_bytes) == (0, 0)
    # Another scanner sharing the memo (the app after a restart of the scanner)
    # rebuilds its records from the memo, not from the files.
    other = Scanner(cache.specs, memo=memo)
    _, stats = other.scan()
    assert (stats.probed, stats.header_bytes, stats.memo_hits) == (0, 0, 6)
    assert (memo.misses, memo.bytes_read) == (misses, read)
    assert state(scanner.images()) == state(other.images()) == first


class _CountingEntry:
    """A DirEntry that counts its stat() calls (DirEntry itself cannot be patched)."""

    def __init__(self, entry: os.DirEntry, counts: Counter) -> None:
        self._entry = entry
        self._counts = counts
        self.name = entry.name
        self.path = entry.path

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        self._counts["stat" if follow_symlinks else "lstat"] += 1
        return self._entry.stat(follow_symlinks=follow_symlinks)

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._entry.is_dir(follow_symlinks=follow_symlinks)

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._entry.is_file(follow_symlinks=follow_symlinks)

    def is_symlink(self) -> bool:
        return self._entry.is_symlink()

    def inode(self) -> int:
        return self._entry.inode()


class _CountingListing:
    def __init__(self, path: str, counts: Counter, real) -> None:
        counts["scandir"] += 1
        with real(path) as it:
            self._entries = [_CountingEntry(e, counts) for e in it]

    def __iter__(self) -> Iterator[_CountingEntry]:
        return iter(self._entries)

    def __enter__(self) -> _CountingListing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_full_scan_costs_one_lstat_per_entry(cache, monkeypatch, probe_sif):
    cache.put(probe_sif, cache.sing / "a" / "b" / "c:1")
    (cache.sing / "link").symlink_to("a")
    scanner = Scanner(cache.specs)  # finds its filesystem type before counting starts
    counts: Counter = Counter()
    real_scandir, real_lstat, real_stat, real_fstat = os.scandir, os.lstat, os.stat, os.fstat

    def lstat(path, *args, **kwargs):
        counts["lstat"] += 1
        return real_lstat(path, *args, **kwargs)

    def stat_(path, *args, **kwargs):
        counts["stat"] += 1
        return real_stat(path, *args, **kwargs)

    def fstat(fd):
        counts["fstat"] += 1
        return real_fstat(fd)

    def counted_scan() -> scan.ScanStats:
        with monkeypatch.context() as m:
            m.setattr(os, "scandir", lambda path: _CountingListing(path, counts, real_scandir))
            m.setattr(os, "lstat", lstat)
            m.setattr(os, "stat", stat_)
            m.setattr(os, "fstat", fstat)
            return scanner.scan()[1]

    stats = counted_scan()

    # Every entry of every listed directory, plus the three roots themselves.
    entries = 0
    listed = 0
    for spec in cache.specs:
        for dirpath, dirnames, filenames in os.walk(spec.path):
            if ".imgcache-trash" in Path(dirpath).parts:
                continue
            listed += 1
            entries += len(dirnames) + len(filenames)
    assert counts["scandir"] == listed == stats.dirs
    assert counts["lstat"] == entries + len(cache.specs) == stats.lstats
    assert counts["stat"] == counts["fstat"] == 0

    # The rescan of the unchanged cache: the same lstats and not one header.
    counts.clear()
    stats = counted_scan()
    assert counts["lstat"] == entries + len(cache.specs) == stats.lstats
    assert stats.header_bytes == 0


def test_a_scan_leaves_the_garbage_collector_as_it_found_it(cache):
    # The scan holds off the cyclic collector (it only makes acyclic records);
    # the app's own setting must be back afterwards, whatever it was.
    assert gc.isenabled()
    Scanner(cache.specs).scan()
    assert gc.isenabled()
    gc.disable()
    try:
        Scanner(cache.specs).scan()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_probing_keeps_no_file_open_and_survives_vanished_files(tmp_path, tiny_squashfs):
    paths = []
    for i in range(2 * scan.PREFETCH_DEPTH + 5):
        path = tmp_path / f"img{i}.sqsh"
        shutil.copyfile(tiny_squashfs, path)
        paths.append(path)
    size = tiny_squashfs.stat().st_size
    files = [(str(p), size) for p in paths]
    files.insert(7, (str(tmp_path / "gone.sqsh"), size))
    before = len(os.listdir("/proc/self/fd"))
    results = scan.probe_files(files)
    assert len(os.listdir("/proc/self/fd")) == before
    assert results[7].note == "cannot read: No such file or directory"
    assert [r.format for r in results[:7] + results[8:]] == [Format.SQUASHFS] * len(paths)


def test_a_fifo_that_replaced_an_image_does_not_hang_the_scan(tmp_path):
    # Between the lstat (a regular file) and the open, someone put a FIFO there:
    # a blocking open would wait for a writer forever.
    fifo = tmp_path / "image.sqsh"
    os.mkfifo(fifo)
    results: list = []
    worker = threading.Thread(
        target=lambda: results.extend(scan.probe_files([(str(fifo), 4096)])), daemon=True
    )
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the probe blocked opening a FIFO"
    assert results[0].note == "cannot read: Illegal seek"


def test_a_network_filesystem_cache_is_probed_on_the_pool_with_the_same_result(
    tmp_path, tiny_squashfs
):
    c = Cache(tmp_path)
    for i in range(3 * scan.POOL_CHUNK + 1):
        c.put(tiny_squashfs, c.enroot / f"hpc+tool{i}+1.0.sqsh")
    pooled = Scanner(c.specs, workers=3, memo=ProbeMemo())
    for cache_scanner in pooled.caches:
        cache_scanner.remote = True  # as on NFS: the mount table decides this normally
    _, stats = pooled.scan()
    assert stats.probed == 3 * scan.POOL_CHUNK + 1
    assert state(pooled.images()) == state(fresh(c.specs))


# --- rescan(dirs) after changes --------------------------------------------------


def _check(scanner: Scanner, change: Change, **expected: set[Path]) -> None:
    want = {k: {str(p) for p in v} for k, v in expected.items()}
    assert {
        "added": set(change.added),
        "changed": set(change.changed),
        "removed": set(change.removed),
    } == {k: want.get(k, set()) for k in ("added", "changed", "removed")}
    assert state(scanner.images()) == state(fresh([c.spec for c in scanner.caches]))


def test_rescan_reports_exactly_what_changed_in_the_hinted_directories(
    cache, probe_sif, probe_squashfs, enroot_default
):
    memo = ProbeMemo()
    scanner = Scanner(cache.specs, memo=memo)
    scanner.scan()
    enroot = str(cache.enroot)

    # A new file.
    new = cache.put(enroot_default, cache.enroot / "hpc+gromacs+2024.1.sqsh")
    change, stats = scanner.rescan([enroot])
    _check(scanner, change, added={new})
    assert stats.probed == 1

    # Replaced under the same name by another file (a new inode): the header is read.
    target = cache.enroot / "nvidia+pytorch+25.09-py3.sqsh"
    tmp = cache.put(probe_squashfs, cache.enroot / ".incoming")
    os.replace(tmp, target)
    change, stats = scanner.rescan([enroot])
    _check(scanner, change, changed={target})
    assert stats.probed == 1
    assert {i.path: i.probe.compression for i in scanner.images()}[str(target)] == "zstd"

    # Modified in place: new size and mtime, same inode.
    with open(new, "ab") as f:
        f.write(b"\0" * 4096)
    change, stats = scanner.rescan([enroot])
    _check(scanner, change, changed={new})
    assert stats.probed == 1

    # Deleted.
    new.unlink()
    change, _ = scanner.rescan([enroot])
    _check(scanner, change, removed={new})

    # A new subdirectory with images in it: the hint names only its parent.
    sub = cache.sing / "nvcr.io" / "hpc"
    made = {cache.put(probe_sif, sub / "lammps:2024"), cache.put(probe_sif, sub / "namd:3.0")}
    change, _ = scanner.rescan([str(cache.sing / "nvcr.io")])
    _check(scanner, change, added=made)

    # A directory renamed: its files move, and no header is read again.
    renamed = cache.sing / "nvcr.io" / "hpc-2024"
    sub.rename(renamed)
    change, stats = scanner.rescan([str(cache.sing / "nvcr.io")])
    moved = {renamed / p.name for p in made}
    _check(scanner, change, added=moved, removed=made)
    assert (stats.probed, stats.header_bytes) == (0, 0)

    # The subdirectory removed with everything in it.
    shutil.rmtree(renamed)
    change, _ = scanner.rescan([str(cache.sing / "nvcr.io")])
    _check(scanner, change, removed=moved)

    # A hint for a directory that is gone: everything below it disappears.
    gone = cache.sing / "nvcr.io"
    listed = {Path(i.path) for i in scanner.images() if i.path.startswith(str(gone) + "/")}
    shutil.rmtree(gone)
    change, _ = scanner.rescan([str(gone)])
    _check(scanner, change, removed=listed)


def test_rescan_of_an_unchanged_directory_reports_nothing(cache):
    scanner = Scanner(cache.specs)
    scanner.scan()
    change, stats = scanner.rescan([str(cache.enroot), str(cache.sing / "nvcr.io")])
    assert not change and stats.probed == 0


# --- permissions -------------------------------------------------------------------


def _scan_as_nobody(specs: list[CacheSpec]) -> dict[str, object]:
    """Scan in a forked child that has dropped root for `nobody` (65534).

    Forked, not run: the interpreter may live where `nobody` cannot exec it.
    """
    Scanner(specs).scan()  # every module the scan needs is imported before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            scanner = Scanner(specs)
            scanner.scan()
            result = {
                "problems": scanner.problems(),
                "notes": {i.path: i.probe.note for i in scanner.images()},
            }
            code = 0
        except BaseException as exc:
            result = {"error": repr(exc)}
        os.write(write, json.dumps(result).encode())
        os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def test_an_unreadable_directory_is_a_problem_line_not_an_exception(probe_sif, probe_squashfs):
    if os.geteuid() != 0:
        pytest.skip("written for root, which must drop to nobody to be refused anything")
    # Not under pytest's tmp_path: that lies in a 0700 directory nobody cannot enter.
    base = Path(tempfile.mkdtemp(prefix="imgcache-perm-"))
    try:
        base.chmod(0o755)
        c = Cache(base)
        for d in (c.sing, c.enroot, c.podman):
            d.chmod(0o755)
        ok = c.put(probe_sif, c.sing / "hpc" / "ok:1")
        locked = c.sing / "locked"
        c.put(probe_sif, locked / "hidden:1")
        secret = c.put(probe_squashfs, c.enroot / "hpc+secret+1.sqsh")
        for path in (c.sing / "hpc", ok, secret):
            path.chmod(0o755 if path.is_dir() else 0o644)
        locked.chmod(0o000)
        secret.chmod(0o000)
        result = _scan_as_nobody(c.specs)
    finally:
        for path in base.rglob("*"):
            if not path.is_symlink():
                path.chmod(stat.S_IRWXU | path.stat().st_mode)
        shutil.rmtree(base)
    assert "error" not in result, result.get("error")
    assert result["problems"] == [f"cannot list {locked}: Permission denied"]
    # Everything else is listed; the file nobody may read says so.
    assert result["notes"] == {str(ok): None, str(secret): "cannot read: Permission denied"}
