"""How much `imgcache compress` costs over running the same pipeline by hand, per codec.

Builds one root filesystem from real files (docs, data, libraries and Python
modules under /usr, each at most 16 MiB, hard-linked where possible, up to `--mb`
MiB: what container images are mostly made of), packs it with mksquashfs once per source codec
(gzip, lzo, lz4, xz, lzma, zstd, and enroot's default `-comp lzo -noD`), then
times, on the same image:

- by hand: `sqfs2tar -r . -s IMG | tar2sqfs -s -q -f <the same options> OUT` in a
  shell, as an admin would type it;
- imgcache: `compress_image` on a fresh copy in a cache directory, which adds
  opening from the root without links, listing and comparing both images,
  probing, fsync, owner/mode/times and the atomic rename.

Rounds are interleaved and the best time of each kept. Prints, per codec, the
size before and after and the ratio imgcache / by hand in wall time (the target:
<= 1.10) and in CPU time (user + system of every process; steadier than wall time
on a shared machine). The by-hand figure has no fsync: imgcache's includes one.

    .venv/bin/python bench/compress.py [--mb 256] [--rounds 5] [--dir /tmp] [--codecs gzip,xz]

It is a benchmark, not a test: pytest does not collect bench/.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from imgcache.backends.config import Settings  # noqa: E402
from imgcache.backends.maintenance.compress import compress_image  # noqa: E402
from imgcache.backends.maintenance.squashopts import from_mksquashfs  # noqa: E402
from tests.builders import have  # noqa: E402

TARGET = 1.10
MiB = 1 << 20
#: Source images: (label, mksquashfs options).
SOURCES = [
    ("gzip", ["-comp", "gzip"]),
    ("lzo", ["-comp", "lzo"]),
    ("lz4", ["-comp", "lz4"]),
    ("xz", ["-comp", "xz"]),
    ("lzma", ["-comp", "lzma"]),
    ("zstd-15", ["-comp", "zstd"]),
    ("lzo -noD", ["-comp", "lzo", "-noD"]),
]


#: Files larger than this are left out, so the budget buys an image's mix of many files.
MAX_FILE = 16 * MiB


def gather(dest: Path, budget: int, sources: list[Path]) -> tuple[int, int]:
    """Fill `dest` with up to `budget` bytes of regular files and symlinks from `sources`."""
    total = files = 0
    for top in sources:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            rel = Path(dirpath).relative_to("/")
            (dest / rel).mkdir(parents=True, exist_ok=True)
            for name in sorted(filenames):
                src = Path(dirpath) / name
                dst = dest / rel / name
                try:
                    st = src.lstat()
                    if stat.S_ISLNK(st.st_mode):
                        dst.symlink_to(os.readlink(src))
                    elif stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE:
                        try:
                            os.link(src, dst)
                        except OSError:
                            shutil.copy2(src, dst)
                        total += st.st_size
                    else:
                        continue
                except OSError:
                    continue
                files += 1
                if total >= budget:
                    return total, files
    return total, files


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (user + system)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def by_hand(source: Path, out: Path, args: list[str]) -> tuple[float, float]:
    """Time the pipeline typed into a shell: (wall, CPU) seconds."""
    line = (
        f"sqfs2tar -r . -s {shlex.quote(str(source))} | "
        f"tar2sqfs -s -q -f {shlex.join(args)} {shlex.quote(str(out))}"
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(["bash", "-o", "pipefail", "-c", line], check=True)
    return time.perf_counter() - started, cpu_seconds() - cpu


def with_imgcache(source: Path, cache: Path) -> tuple[float, float, int]:
    """Time compress_image on a fresh copy: (wall, CPU) seconds and the size after."""
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir()
    target = cache / "image.sqsh"
    shutil.copyfile(source, target)
    # Flush the copy first: its writeback must not land inside the timed run.
    fd = os.open(target, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    started, cpu = time.perf_counter(), cpu_seconds()
    result = compress_image(str(cache), str(target), Settings(), force=True)
    assert result.replaced
    return time.perf_counter() - started, cpu_seconds() - cpu, result.after


def main(argv: list[str] | None = None) -> int:
    """Build the images, time both ways, print the table; exit 1 if a ratio misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=256, help="MiB of files in the image (256)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (best kept)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to work (/tmp)")
    parser.add_argument(
        "--source",
        action="append",
        help="directories to take files from (default /usr/share and /usr/lib)",
    )
    parser.add_argument("--codecs", help="comma-separated labels to run (default: all)")
    args = parser.parse_args(argv)
    missing = [t for t in ("mksquashfs", "sqfs2tar", "tar2sqfs", "unsquashfs") if not have(t)]
    if missing:
        print(f"needs {', '.join(missing)}", file=sys.stderr)
        return 2
    sources = [Path(s) for s in (args.source or ["/usr/share", "/usr/lib"])]
    wanted = SOURCES
    if args.codecs:
        labels = {c.strip() for c in args.codecs.split(",")}
        wanted = [s for s in SOURCES if s[0] in labels]
    options = from_mksquashfs(Settings().squash_options)
    tar2sqfs_args = options.tar2sqfs_args()
    with tempfile.TemporaryDirectory(prefix="imgcache-bench-compress-", dir=args.dir) as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        total, files = gather(base / "rootfs", args.mb * MiB, sources)
        print(
            f"imgcache compress bench: {files} files, {total / MiB:.0f} MiB from "
            f"{', '.join(map(str, sources))}; target {options.describe()}; "
            f"{os.cpu_count()} CPUs; best of {args.rounds} interleaved rounds "
            f"(tree gathered in {time.perf_counter() - t0:.1f} s)"
        )
        print(f"by hand: sqfs2tar -r . -s IMG | tar2sqfs -s -q -f {shlex.join(tar2sqfs_args)} OUT")
        print()
        print(
            f"{'source':<10} {'before':>9} {'after':>9} {'by hand s':>10} {'imgcache s':>10} "
            f"{'ratio':>6} {'CPU ratio':>9}"
        )
        ok = True
        for label, mksquashfs_options in wanted:
            image = base / "source.sqsh"
            build = ["mksquashfs", str(base / "rootfs"), str(image), *mksquashfs_options]
            subprocess.run([*build, "-noappend", "-quiet", "-no-progress"], check=True)
            hand: list[tuple[float, float]] = []
            ours: list[tuple[float, float]] = []
            after = 0
            for _ in range(args.rounds):
                hand.append(by_hand(image, base / "by-hand.sqsh", tar2sqfs_args))
                wall, cpu, after = with_imgcache(image, base / "cache")
                ours.append((wall, cpu))
            best_hand, best_ours = min(w for w, _ in hand), min(w for w, _ in ours)
            ratio = best_ours / best_hand
            cpu_ratio = min(c for _, c in ours) / min(c for _, c in hand)
            ok &= ratio <= TARGET
            print(
                f"{label:<10} {image.stat().st_size / MiB:8.1f}M {after / MiB:8.1f}M "
                f"{best_hand:10.2f} {best_ours:10.2f} {ratio:6.2f} {cpu_ratio:9.2f}"
                f"  {'PASS' if ratio <= TARGET else 'FAIL'}",
                flush=True,
            )
        print()
        verdict = "PASS" if ok else "FAIL"
        print(f"{verdict}: imgcache compress <= {TARGET:.2f}x the pipeline by hand")
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
