"""Benchmark the cache scanner against the floor and against what admins run today.

Builds caches of 10,000 and 50,000 images in a temporary directory and prints,
for each size, warm and cold: the full scan time, the rescan-unchanged time, the
header bytes read, and two ratios:

(a) against the *floor*: a bare `os.scandir` walk that opens every file and
    reads its first 4096 bytes, over the same files. No tool that reads headers
    can do less, so the target is: full scan <= 2x the floor.
(b) against `unsquashfs -s` run once per file (what admins loop over today),
    timed on a sample and compared per file with our full scan. Target: >= 100x.

and checks that a rescan of an unchanged cache reads no header at all.

Every file starts with a real header: one template of each kind is made with the
real tools (mksquashfs with several codecs including enroot's `-comp lzo -noD`,
siftool, skopeo), and each cache file is the template's header region with the
sizes inside patched to a realistic image size (GBs), then extended sparse with
`ftruncate`, so `ls -l` shows gigabytes and the disk holds kilobytes. The caches
use the real layouts: a singularity tree (`[registry/]org/name:tag[.sif]`), an
enroot flat directory (`org+name+tag.sqsh`) and a podman directory of oci-archives.
A few files are made truncated on purpose; the bench counts corrupt probes and
fails if any other file probes as corrupt.

Cold runs drop the page cache, dentries and inodes (`/proc/sys/vm/drop_caches`)
before each repetition; without permission only warm figures are printed.

It also times what the app pays on a watch event: `Catalog.rescan([one dir])`
after one file in that directory changed (the rescan plus the new inventory
snapshot with its findings), for a singularity directory of ~150 images and for
the flat enroot directory; and `--profile` prints where a full scan's CPU goes.

    .venv/bin/python bench/scan.py [--sizes 10000,50000] [--dir /tmp] [--repeat 5]
    .venv/bin/python bench/scan.py --sizes 10000 --no-cold --profile

It is a benchmark, not a test: pytest does not collect bench/.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script from a checkout: the templates come from the test builders.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from imgcache.backends.config import CacheSpec, Settings  # noqa: E402
from imgcache.backends.inventory import probe  # noqa: E402
from imgcache.backends.inventory.catalog import Catalog  # noqa: E402
from imgcache.backends.inventory.findings import evaluate  # noqa: E402
from imgcache.backends.inventory.model import CacheKind  # noqa: E402
from imgcache.backends.inventory.scan import Scanner, ScanStats  # noqa: E402
from tests.builders import (  # noqa: E402
    have,
    make_oci_archive,
    make_oci_layout,
    make_rootfs,
    make_sif,
    make_squashfs,
)

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
DROP_CACHES = "/proc/sys/vm/drop_caches"
#: Share of the images in each cache kind; the rest are oci-archives.
SINGULARITY_SHARE, ENROOT_SHARE = 0.60, 0.35
#: One file in this many is written truncated on purpose (it must probe corrupt).
CORRUPT_EVERY = 1000

# Offsets inside the formats that the bench patches (see design.md, "Facts").
SQ_BYTES_USED = 40  # squashfs superblock: u64 bytes_used
SIF_UUID = 48  # SIF global header: uuid[16]
SIF_DATA_SIZE = 120  # SIF global header: int64 data size
SIF_DESCR_SIZE = 585
#: datatype, used, id, group, link, offset, size, size with padding
SIF_DESCR_FIELDS = struct.Struct("<iBIIIqqq")


# --- templates made by the real tools -------------------------------------------


@dataclass
class SquashTemplate:
    """The first bytes of a squashfs image made by mksquashfs."""

    label: str
    head: bytes


@dataclass
class SifTemplate:
    """The header region of a SIF made by siftool: everything up to the primary
    partition's superblock, and where its primary descriptor and partition sit."""

    label: str
    head: bytes
    data_offset: int
    descriptor_at: int
    partition_offset: int


@dataclass
class ArchiveTemplate:
    """The members of an oci-archive written by skopeo, in the order skopeo wrote them."""

    members: list[tuple[tarfile.TarInfo, bytes]]
    manifest_name: str
    layer_digest: str
    index: dict


@dataclass
class Templates:
    """One template per kind and codec."""

    squashfs: list[SquashTemplate]
    sif: list[SifTemplate]
    archive: ArchiveTemplate
    seconds: float = 0.0


#: mksquashfs settings seen in real caches: enroot's default, pyxis' advice, and others.
SQUASH_VARIANTS = {
    "lzo -noD (enroot default)": ("lzo", ["-noD"]),
    "zstd -b 1M (pyxis advice)": ("zstd", ["-Xcompression-level", "3", "-b", "1M"]),
    "gzip": ("gzip", []),
    "xz": ("xz", []),
}
SIF_VARIANTS = {
    "sif gzip (singularity build)": ("gzip", [], False),
    "sif zstd, signed": ("zstd", [], True),
    "sif gzip -noD": ("gzip", ["-noD"], False),
}


def build_templates(work: Path) -> Templates:
    """Make the template images with mksquashfs, siftool, umoci and skopeo."""
    start = time.perf_counter()
    rootfs = make_rootfs(work / "rootfs")
    squashfs = []
    for label, (comp, options) in SQUASH_VARIANTS.items():
        path = make_squashfs(work / f"{comp}.sqsh", comp=comp, options=options, rootfs=rootfs)
        squashfs.append(SquashTemplate(label, path.read_bytes()[: 4 * KiB]))
    sifs = []
    for i, (label, (comp, options, signed)) in enumerate(SIF_VARIANTS.items()):
        part = make_squashfs(work / f"sif{i}.sqsh", comp=comp, options=options, rootfs=rootfs)
        path = make_sif(work / f"t{i}.sif", squashfs=part, signature=signed)
        result = probe.probe_path(str(path))
        assert result.sif is not None and result.sif.primary is not None, result
        primary = result.sif.primary
        data = path.read_bytes()
        (dtotal,) = struct.unpack_from("<q", data, 88)
        (descr_offset,) = struct.unpack_from("<q", data, 96)
        descriptor_at = next(
            descr_offset + k * SIF_DESCR_SIZE
            for k in range(dtotal)
            if SIF_DESCR_FIELDS.unpack_from(data, descr_offset + k * SIF_DESCR_SIZE)[2]
            == primary.id
        )
        sifs.append(
            SifTemplate(
                label,
                data[: primary.offset + 4 * KiB],
                struct.unpack_from("<q", data, 112)[0],
                descriptor_at,
                primary.offset,
            )
        )
    layout = make_oci_layout(work / "layout")
    archive = make_oci_archive(work / "t.oci.tar", "docker.io/library/template:1", layout=layout)
    members = []
    with tarfile.open(archive) as tf:
        for member in tf:
            data = tf.extractfile(member).read() if member.isreg() else b""
            members.append((member, data))
    by_name = {m.name: d for m, d in members}
    index = json.loads(by_name["index.json"])
    digest = index["manifests"][0]["digest"]
    manifest_name = "blobs/" + digest.replace(":", "/")
    manifest = json.loads(by_name[manifest_name])
    tpl = ArchiveTemplate(members, manifest_name, manifest["layers"][0]["digest"], index)
    return Templates(squashfs, sifs, tpl, time.perf_counter() - start)


# --- writing a cache of sparse files ----------------------------------------------


def _image_size(rng: random.Random) -> int:
    """A realistic image size: log-uniform between 300 MiB and 24 GiB, 4 KiB aligned."""
    size = int(2 ** rng.uniform(28.2, 34.6))
    return size - size % (4 * KiB)


def _write(path: str, head: bytes, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, head)
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def write_squashfs(path: str, tpl: SquashTemplate, size: int, *, truncated: bool) -> None:
    """A squashfs of `size` bytes whose superblock says so (or more, when `truncated`)."""
    head = bytearray(tpl.head)
    # mksquashfs pads the file to 4 KiB; bytes_used is the unpadded length.
    used = size - 1234 if not truncated else size + 64 * MiB
    struct.pack_into("<Q", head, SQ_BYTES_USED, used)
    _write(path, head, size)


def write_sif(
    path: str, tpl: SifTemplate, size: int, rng: random.Random, *, truncated: bool
) -> None:
    """A SIF of `size` bytes whose primary partition fills it (or runs past it)."""
    head = bytearray(tpl.head)
    head[SIF_UUID : SIF_UUID + 16] = rng.randbytes(16)
    part = size - tpl.partition_offset
    struct.pack_into("<q", head, SIF_DATA_SIZE, size - tpl.data_offset)
    # The descriptor's size and size-with-padding sit at +25 and +33.
    claimed = part + 512 * MiB if truncated else part
    struct.pack_into("<qq", head, tpl.descriptor_at + 25, claimed, claimed)
    struct.pack_into("<Q", head, tpl.partition_offset + SQ_BYTES_USED, part - 1234)
    _write(path, head, size)


def _tar_header(member: tarfile.TarInfo, name: str, size: int) -> bytes:
    """The template member's header with another name and size, as Go's tar writes it."""
    info = tarfile.TarInfo(name)
    for attr in ("mode", "uid", "gid", "mtime", "type", "linkname", "uname", "gname"):
        setattr(info, attr, getattr(member, attr))
    info.size = size
    return info.tobuf(tarfile.USTAR_FORMAT)


def write_archive(path: str, tpl: ArchiveTemplate, ref: str, layer_size: int) -> None:
    """An oci-archive in skopeo's member order, its layer grown sparse to `layer_size`.

    The manifest records the new layer size, so its digest (and blob name) change
    and index.json points at the new one, with `ref` as the ref.name annotation.
    """
    by_name = {m.name: d for m, d in tpl.members}
    manifest = json.loads(by_name[tpl.manifest_name])
    manifest["layers"][0]["size"] = layer_size
    manifest_data = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest_data).hexdigest()
    index = json.loads(json.dumps(tpl.index))
    index["manifests"][0].update(digest=manifest_digest, size=len(manifest_data))
    index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = ref
    index_data = json.dumps(index, separators=(",", ":")).encode()
    layer_name = "blobs/" + tpl.layer_digest.replace(":", "/")
    # (offset, bytes) pieces; the layer's data between them stays a hole.
    pieces: list[tuple[int, bytes]] = []
    at = 0
    for member, data in tpl.members:
        if member.name == layer_name:
            pieces.append((at, _tar_header(member, member.name, layer_size)))
            at += 512 + -(-layer_size // 512) * 512
            continue
        name = member.name
        if name == tpl.manifest_name:
            name, data = "blobs/" + manifest_digest.replace(":", "/"), manifest_data
        elif name == "index.json":
            data = index_data
        block = _tar_header(member, name, len(data)) + data + b"\0" * (-len(data) % 512)
        pieces.append((at, block))
        at += len(block)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        for offset, data in pieces:
            os.pwrite(fd, data, offset)
        os.ftruncate(fd, at + 1024)  # two zero blocks end the archive
    finally:
        os.close(fd)


ORGS = [
    "nvidia", "determinedai", "rocm", "pytorch", "tensorflow", "huggingface", "bioconda",
    "hpc", "climate", "genomics", "cfd", "astro", "chem", "vision", "nlp", "lab", "research",
]  # fmt: skip
NAMES = [
    "pytorch", "tensorflow", "environments", "cuda", "jax", "mxnet", "triton", "nemo", "rapids",
    "gromacs", "lammps", "namd", "openfoam", "paraview", "r-base", "julia", "spark", "dask",
]  # fmt: skip
REGISTRIES = ["", "", "nvcr.io/", "ghcr.io/", "docker.io/", "registry.example.com/"]


@dataclass
class Cache:
    """A bench cache on disk and what was put in it."""

    root: Path
    specs: list[CacheSpec]
    files: int = 0
    corrupt_intended: int = 0
    apparent_bytes: int = 0
    squashfs_files: list[str] = field(default_factory=list)
    sif_files: list[tuple[str, int]] = field(default_factory=list)
    """SIF paths with their partition offsets (for `unsquashfs -o`)."""
    seconds: float = 0.0


def _tag(rng: random.Random, i: int) -> str:
    return rng.choice(["", "v", "cuda-12.", "rocm-6.", "py3-", "24.0"]) + f"{i}.{rng.randrange(9)}"


def build_cache(root: Path, n: int, templates: Templates, seed: int = 7) -> Cache:
    """Write `n` sparse images under `root` in the three cache layouts."""
    start = time.perf_counter()
    rng = random.Random(seed)
    sing, enroot, podman = root / "singularity", root / "enroot", root / "podman"
    for d in (sing, enroot, podman):
        d.mkdir(parents=True)
    cache = Cache(
        root,
        [
            CacheSpec(CacheKind.SINGULARITY, str(sing)),
            CacheSpec(CacheKind.ENROOT, str(enroot)),
            CacheSpec(CacheKind.PODMAN, str(podman)),
        ],
    )
    n_sing = int(n * SINGULARITY_SHARE)
    n_enroot = int(n * ENROOT_SHARE)
    n_podman = n - n_sing - n_enroot
    # About 150 images per repository directory, like a cache that keeps many tags.
    dirs = [
        f"{REGISTRIES[k % len(REGISTRIES)]}{ORGS[k % len(ORGS)]}{k // len(ORGS) or ''}"
        for k in range(max(1, n_sing // 150))
    ]
    for d in set(dirs):
        (sing / d).mkdir(parents=True, exist_ok=True)
    count = 0

    def corrupt() -> bool:
        nonlocal count
        count += 1
        return count % CORRUPT_EVERY == 0

    for i in range(n_sing):
        rel = f"{dirs[i % len(dirs)]}/{rng.choice(NAMES)}:{_tag(rng, i)}"
        size = _image_size(rng)
        truncated = corrupt()
        cache.corrupt_intended += truncated
        if i % 10 == 9:
            # A bare squashfs in the SIF tree (singularity runs those too).
            path = str(sing / rel)
            write_squashfs(path, rng.choice(templates.squashfs), size, truncated=truncated)
            cache.squashfs_files.append(path)
        else:
            path = str(sing / (rel + (".sif" if i % 3 == 0 else "")))
            tpl = rng.choice(templates.sif)
            write_sif(path, tpl, size, rng, truncated=truncated)
            cache.sif_files.append((path, tpl.partition_offset))
        cache.apparent_bytes += size
    # enroot: mostly its own default (lzo -noD), the rest recompressed.
    for i in range(n_enroot):
        name = f"{rng.choice(ORGS)}+{rng.choice(NAMES)}+{_tag(rng, i)}.sqsh"
        tpl = templates.squashfs[0] if i % 2 else rng.choice(templates.squashfs)
        size = _image_size(rng)
        truncated = corrupt()
        cache.corrupt_intended += truncated
        path = str(enroot / name)
        write_squashfs(path, tpl, size, truncated=truncated)
        cache.squashfs_files.append(path)
        cache.apparent_bytes += size
    for i in range(n_podman):
        ref = f"docker.io/{rng.choice(ORGS)}/{rng.choice(NAMES)}:{_tag(rng, i)}"
        layer = _image_size(rng) % (6 * GiB) + 100 * MiB
        path = str(podman / f"{ref.rsplit('/', 1)[1].replace(':', '_')}.oci.tar")
        write_archive(path, templates.archive, ref, layer)
        cache.apparent_bytes += os.stat(path).st_size
    cache.files = n
    cache.seconds = time.perf_counter() - start
    return cache


# --- what is timed ------------------------------------------------------------


def floor(roots: list[str]) -> int:
    """The floor: walk with os.scandir, open each file, read 4096 bytes, close."""
    total = 0
    stack = list(roots)
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    total += len(os.read(fd, 4096))
                finally:
                    os.close(fd)
    return total


def drop_caches() -> bool:
    """Drop the page cache, dentries and inodes; False when not permitted."""
    try:
        os.sync()
        with open(DROP_CACHES, "w") as f:
            f.write("3\n")
    except OSError:
        return False
    return True


def timed(
    runs: dict[str, Callable[[], object]], repeat: int, *, cold: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall time and median process CPU time of each of `runs` over `repeat` rounds.

    The runs take turns within each round, so a burst of load on the machine
    hits all of them alike; with `cold`, caches are dropped before every run.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            if cold:
                drop_caches()
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return (
        {name: statistics.median(t) for name, t in times.items()},
        {name: statistics.median(t) for name, t in cpu.items()},
    )


def unsquashfs_sample(cache: Cache, k: int, rng: random.Random) -> tuple[float, int]:
    """Seconds per file of `unsquashfs -s` over a sample of `k` squashfs and SIF files.

    SIFs are read the way admins do it, at the partition offset (`-o`).
    """
    pool: list[list[str]] = [["unsquashfs", "-s", p] for p in cache.squashfs_files]
    pool += [["unsquashfs", "-s", "-o", str(off), p] for p, off in cache.sif_files]
    sample = rng.sample(pool, min(k, len(pool)))
    start = time.perf_counter()
    failed = 0
    for argv in sample:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        failed += proc.returncode != 0
    return (time.perf_counter() - start) / len(sample), failed


def catalog_figures(cache: Cache, repeat: int) -> dict[str, float]:
    """What the app pays per watch event: `Catalog.rescan([dir])` after one file changed.

    The catalog has the default settings (so the newest profile's defaults, whose
    repository the bench cache also holds). Each round moves one file's mtime
    and times the rescan of its directory, snapshot and findings included; the
    medians are returned in seconds, with the scanner's own share separately.
    """
    settings = Settings(caches=tuple(cache.specs))
    catalog = Catalog(settings)
    gc.collect()
    start = time.perf_counter()
    inventory = catalog.scan()
    figures = {"catalog scan": time.perf_counter() - start}
    # Everything after the walk: findings, presence of the defaults, totals.
    figures["  of which snapshot"] = figures["catalog scan"] - inventory.stats.seconds
    sing_root, enroot_root = cache.specs[0].path, cache.specs[1].path
    # The singularity directory with the most files (~150), and the flat enroot one.
    by_dir: dict[str, list[str]] = {}
    for image in inventory.images:
        by_dir.setdefault(os.path.dirname(image.path), []).append(image.path)
    sing_dir = max(
        (d for d in by_dir if d.startswith(sing_root + "/")), key=lambda d: len(by_dir[d])
    )
    for label, directory in (("dir", sing_dir), ("flat", enroot_root)):
        target = by_dir[directory][len(by_dir[directory]) // 2]
        total, scanner_only = [], []
        for k in range(repeat):
            st = os.stat(target)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000 * (k + 1)))
            gc.collect()
            start = time.perf_counter()
            inventory = catalog.rescan([directory])
            total.append(time.perf_counter() - start)
            scanner_only.append(inventory.stats.seconds)
            assert inventory.change.changed == {target}, inventory.change
        figures[f"rescan 1 file ({label})"] = statistics.median(total)
        figures[f"  of which scanner ({label})"] = statistics.median(scanner_only)
        figures[f"{label} files"] = len(by_dir[directory])
    gc.collect()
    start = time.perf_counter()
    inventory = catalog.rescan([sing_dir])
    figures["rescan unchanged dir"] = time.perf_counter() - start
    return figures


def profile_scan(cache: Cache, top: int = 30) -> str:
    """cProfile of one full scan by a new scanner (warm), sorted by own time."""
    gc.collect()
    profiler = cProfile.Profile()
    scanner = Scanner(cache.specs)
    profiler.enable()
    scanner.scan()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


@dataclass
class Row:
    """The figures of one cache size in one cache state."""

    size: int
    state: str
    floor: float
    full: float
    full_cpu: float
    """Process CPU time of the full scan (user + system)."""
    rescan: float
    rescan_bytes: int
    rescan_probed: int
    header_bytes: int
    unsquashfs_per_file: float
    unsquashfs_failed: int


def run_size(
    n: int, base: Path, templates: Templates, args: argparse.Namespace, cold_ok: bool
) -> tuple[list[Row], dict[str, object]]:
    """Build one cache, time everything warm (and cold), and remove it."""
    root = Path(tempfile.mkdtemp(prefix=f"imgcache-bench-{n}-", dir=base))
    try:
        cache = build_cache(root, n, templates)
        roots = [s.path for s in cache.specs]
        info: dict[str, object] = {"build": cache.seconds, "files": cache.files}

        # Correctness first: every file listed, nothing corrupt but what was meant to be.
        scanner = Scanner(cache.specs)
        _, stats = scanner.scan()
        images = scanner.images()
        corrupt = sum(1 for i in images if i.probe.corrupt)
        info.update(
            listed=len(images),
            corrupt=corrupt,
            corrupt_intended=cache.corrupt_intended,
            unknown=sum(1 for i in images if i.probe.format.value == "unknown"),
            no_ref=sum(1 for i in images if i.ref is None),
            lstats=stats.lstats,
            dirs=stats.dirs,
            apparent=cache.apparent_bytes,
            disk=sum(os.lstat(i.path).st_blocks * 512 for i in images),
        )
        start = time.perf_counter()
        evaluate(images, (), now=time.time(), stale_days=90)
        info["evaluate"] = time.perf_counter() - start

        rows = []
        for state in ("warm", "cold") if cold_ok else ("warm",):
            cold = state == "cold"
            full_stats: list[ScanStats] = []
            rescan_stats: list[ScanStats] = []
            runs = {
                "floor": lambda: floor(roots),
                # A new Scanner each time: nothing remembered, every header read.
                "full": lambda: full_stats.append(Scanner(cache.specs).scan()[1]),  # noqa: B023
                # The scanner of the first scan again: the cache has not changed.
                "rescan": lambda: rescan_stats.append(scanner.scan()[1]),  # noqa: B023
            }
            t, cpu = timed(runs, args.cold_repeat if cold else args.repeat, cold=cold)
            if cold:
                drop_caches()
            per_file, failed = unsquashfs_sample(cache, args.sample, random.Random(n))
            rows.append(
                Row(
                    n,
                    state,
                    t["floor"],
                    t["full"],
                    cpu["full"],
                    t["rescan"],
                    max(s.header_bytes for s in rescan_stats),
                    max(s.probed for s in rescan_stats),
                    statistics.median(s.header_bytes for s in full_stats),
                    per_file,
                    failed,
                )
            )
        # Last: these move files' mtimes, which the rescan above must not see.
        if args.profile:
            info["profile"] = profile_scan(cache)
        info["catalog"] = catalog_figures(cache, args.repeat)
        return rows, info
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


def report(rows: list[Row], infos: dict[int, dict[str, object]]) -> bool:
    """Print the table and the verdicts; True when every target is met."""
    print()
    print(
        f"{'images':>7} {'cache':>5} {'floor ms':>9} {'full ms':>9} {'x floor':>7} "
        f"{'rescan ms':>9} {'hdr MiB':>8} {'rescan B':>8} {'us/file':>8} {'cpu us/f':>8} "
        f"{'unsq ms/f':>9} {'x unsq':>7}"
    )
    ok = True
    verdicts = []
    for r in rows:
        per_file = r.full / r.size
        ratio_floor = r.full / r.floor
        ratio_unsq = r.unsquashfs_per_file / per_file
        print(
            f"{r.size:>7} {r.state:>5} {_ms(r.floor)} {_ms(r.full)} {ratio_floor:7.2f} "
            f"{_ms(r.rescan)} {r.header_bytes / MiB:8.1f} {r.rescan_bytes:8d} "
            f"{per_file * 1e6:8.1f} {r.full_cpu / r.size * 1e6:8.1f} "
            f"{r.unsquashfs_per_file * 1000:9.2f} {ratio_unsq:7.0f}"
        )
        checks = [
            ("full scan <= 2x floor", ratio_floor <= 2.0, f"{ratio_floor:.2f}x"),
            (
                "rescan-unchanged reads no header",
                r.rescan_bytes == 0 and r.rescan_probed == 0,
                f"{r.rescan_bytes} bytes, {r.rescan_probed} probes",
            ),
            (
                ">= 100x faster than unsquashfs -s",
                ratio_unsq >= 100,
                f"{ratio_unsq:.0f}x; unsquashfs failed on {r.unsquashfs_failed} of the sample",
            ),
        ]
        for name, passed, figure in checks:
            ok &= passed
            verdicts.append(
                f"{'PASS' if passed else 'FAIL'}  {r.size:>6} {r.state}: {name} ({figure})"
            )
    print()
    for size, info in infos.items():
        good = info["corrupt"] == info["corrupt_intended"] and info["listed"] == size
        one_lstat = info["lstats"] == info["listed"] + info["dirs"]
        ok &= good and one_lstat
        print(
            f"{'PASS' if good else 'FAIL'}  {size:>6} cache: {info['listed']} listed, "
            f"{info['corrupt']} corrupt ({info['corrupt_intended']} intended), "
            f"{info['unknown']} unknown, {info['no_ref']} without a ref; "
            f"{info['apparent'] / 2**40:.1f} TiB apparent, {info['disk'] / MiB:.0f} MiB on disk; "
            f"built in {info['build']:.1f} s; findings.evaluate {info['evaluate'] * 1000:.0f} ms"
        )
        print(
            f"{'PASS' if one_lstat else 'FAIL'}  {size:>6} cache: one lstat per entry "
            f"({info['lstats']} lstats = {info['listed']} files + {info['dirs']} directories)"
        )
    for line in verdicts:
        print(line)
    print()
    for size, info in infos.items():
        figures = info["catalog"]
        print(
            f"{size:>7} catalog (warm, ms): "
            + ", ".join(
                f"{name} {value:.0f}" if name.endswith("files") else f"{name} {value * 1000:.1f}"
                for name, value in figures.items()
            )
        )
    for size, info in infos.items():
        if "profile" in info:
            print(f"\n--- cProfile of one full scan, {size} images ---")
            print(info["profile"])
    return ok


def main(argv: list[str] | None = None) -> int:
    """Build the caches, run the timings, print the table; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000", help="cache sizes (default 10000,50000)")
    parser.add_argument(
        "--dir", default=tempfile.gettempdir(), help="where to build (default /tmp)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="warm repetitions (median)")
    parser.add_argument("--cold-repeat", type=int, default=3, help="cold repetitions (median)")
    parser.add_argument("--sample", type=int, default=200, help="files for unsquashfs -s")
    parser.add_argument("--no-cold", action="store_true", help="warm page cache only")
    parser.add_argument("--keep", action="store_true", help="leave the caches behind")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of one full scan per size"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    missing = [t for t in ("mksquashfs", "unsquashfs", "siftool", "skopeo", "umoci") if not have(t)]
    if missing:
        print(f"needs {', '.join(missing)}", file=sys.stderr)
        return 2
    base = Path(args.dir)
    cold_ok = not args.no_cold and drop_caches()
    print(
        f"imgcache scan bench: sizes {sizes}, warm x{args.repeat}"
        + (f", cold x{args.cold_repeat} (drop_caches before each run)" if cold_ok else "")
        + ("" if cold_ok or args.no_cold else ", cold skipped: cannot write " + DROP_CACHES)
        + f", python {sys.version.split()[0]}, {os.cpu_count()} CPUs, under {base}"
    )
    with tempfile.TemporaryDirectory(prefix="imgcache-bench-tpl-", dir=base) as tpl_dir:
        templates = build_templates(Path(tpl_dir))
    print(f"templates made with the real tools in {templates.seconds:.1f} s")
    rows: list[Row] = []
    infos: dict[int, dict[str, object]] = {}
    for n in sizes:
        t0 = time.perf_counter()
        size_rows, infos[n] = run_size(n, base, templates, args, cold_ok)
        rows += size_rows
        print(f"{n} images done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0 if report(rows, infos) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
