"""How much the builtin pull costs over running its tools by hand.

Starts a throwaway registry on 127.0.0.1, pushes an image of realistic shape
(a few hundred files, about 64 MiB in 4 layers, half random, half text), then
times, on the same image and with the same mksquashfs options:

- imgcache's builtin pull into a SIF cache, against skopeo copy + umoci raw
  unpack + mksquashfs + siftool new/add run by hand;
- imgcache's builtin import into an enroot cache, against skopeo + umoci +
  mksquashfs -all-root by hand.

Each is run `ROUNDS` times, interleaved with its rival, and the best time
kept. Each run removes its own scratch files, inside the clock; the previous
round's result is removed, and the page cache written back, outside it.
Target: ratio <= 1.15.

Then it runs bench/compress.py: `imgcache compress` against the same
sqfs2tar | tar2sqfs pipeline by hand, with the size before and after, for each
source codec (target: ratio <= 1.10). Options after `--` go to it.

    .venv/bin/python bench/jobs.py [--no-compress] [-- --mb 128 --rounds 3]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import compress  # bench/compress.py

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs.queue import JobQueue
from imgcache.backends.jobs.states import JobRequest, JobState
from imgcache.backends.tools.run import run
from tests.integration.images import build_image
from tests.integration.registry import Registry

ROUNDS = 7
LAYERS = 4
FILES_PER_LAYER = 75
MIB_PER_LAYER = 16
TARGET = 1.15


def _layer(i: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    size = MIB_PER_LAYER * 1024 * 1024 // FILES_PER_LAYER
    line = f"layer {i} text that compresses well, as libraries and sources do\n".encode()
    for n in range(FILES_PER_LAYER):
        data = os.urandom(size) if n % 2 else (line * (size // len(line) + 1))[:size]
        files[f"opt/layer{i}/dir{n % 7}/file{n}.bin"] = data
    return files


Step = tuple[str, Callable[[], None], Callable[[], None]]


def _race(first: Step, second: Step) -> tuple[list[float], list[float]]:
    """`ROUNDS` times each, the two interleaved so that machine noise hits both.

    A step is (label, reset, run). Only `run` is timed: `reset` removes the
    previous round's result and is followed by a `sync`, so that no run pays
    for deleting or writing back what an earlier run left behind.
    """
    times: dict[str, list[float]] = {first[0]: [], second[0]: []}
    for _ in range(ROUNDS):
        for label, reset, step in (first, second):
            reset()
            os.sync()
            start = time.perf_counter()
            step()
            times[label].append(time.perf_counter() - start)
    for label, runs in times.items():
        print(f"  {label:<44} {min(runs):7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in runs)})")
    return times[first[0]], times[second[0]]


def main(argv: list[str] | None = None) -> int:
    """Time pull and import, then compress; exit 1 if any ratio misses its target."""
    argv = sys.argv[1:] if argv is None else argv
    rest = argv[argv.index("--") + 1 :] if "--" in argv else []
    ok = fetch() == 0
    if "--no-compress" not in argv:
        print()
        ok &= compress.main(rest) == 0
    return 0 if ok else 1


def fetch() -> int:
    """Pull and import against their tools by hand; 0 when both are within `TARGET`."""
    base = Path(tempfile.mkdtemp(prefix="imgcache-bench-"))
    registry = Registry(base / "registry")
    try:
        print(
            f"building a {LAYERS}-layer image of {LAYERS * FILES_PER_LAYER} files, "
            f"{LAYERS * MIB_PER_LAYER} MiB ..."
        )
        layout = build_image(base / "layout", [_layer(i) for i in range(LAYERS)])
        ref = registry.push(layout, "latest", "bench/image:1")
        conf = base / "registries.conf"
        conf.write_text(f'[[registry]]\nlocation = "{registry.address}"\ninsecure = true\n')
        os.environ["CONTAINERS_REGISTRIES_CONF"] = str(conf)
        os.environ["IMGCACHE_TMPDIR"] = str(base / "work")
        os.environ["XDG_STATE_HOME"] = str(base / "state")
        (base / "work").mkdir()
        options = list(Settings().squash_options)
        skopeo = ["skopeo", "--registries-conf", str(conf), "--insecure-policy"]
        ratios = []
        done = base / "hand-result"

        def fresh(path: Path) -> None:
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()

        for kind, job in ((CacheKind.SINGULARITY, "pull"), (CacheKind.ENROOT, "import")):
            root = base / kind.value
            settings = Settings(caches=(CacheSpec(kind, str(root)),))

            def imgcache(settings=settings, job=job) -> None:
                queue = JobQueue(settings)
                status = queue.submit(JobRequest(job, ref, settings.caches[0], backend="builtin"))
                queue.wait()
                final = queue.get(status.id)
                queue.shutdown()
                if final.state is not JobState.DONE:
                    raise SystemExit(f"{job} failed: {final.message}")

            def by_hand(kind=kind) -> None:
                # Scratch is removed at the end, as imgcache removes its own.
                work = base / "hand"
                work.mkdir()
                run(
                    [*skopeo, "copy", "--quiet", f"docker://{ref}", f"oci:{work}/layout:image"],
                    capture=True,
                )
                run(
                    ["umoci", "raw", "unpack", "--image", f"{work}/layout:image", f"{work}/rootfs"],
                    capture=True,
                )
                sif = kind is CacheKind.SINGULARITY
                out = work / "fs.squashfs" if sif else done / "image.sqsh"
                extra = [] if sif else ["-all-root"]
                run(
                    [
                        "mksquashfs",
                        f"{work}/rootfs",
                        str(out),
                        "-noappend",
                        *extra,
                        *options,
                        "-no-progress",
                    ],
                    capture=True,
                )
                if sif:
                    image = done / "image.sif"
                    run(["siftool", "new", str(image)], capture=True)
                    run(
                        [
                            "siftool",
                            "add",
                            "--datatype",
                            "4",
                            "--parttype",
                            "2",
                            "--partfs",
                            "1",
                            "--partarch",
                            "2",
                            str(image),
                            str(out),
                        ],
                        capture=True,
                    )
                shutil.rmtree(work)

            print(f"\n{job} into a {kind.value} cache:")
            hand = "skopeo + umoci + mksquashfs" + (" + siftool" if job == "pull" else "")
            ours, theirs = _race(
                (f"imgcache builtin {job}", lambda root=root: fresh(root), imgcache),
                (hand, lambda: fresh(done), by_hand),
            )
            ratio = min(ours) / min(theirs)
            ratios.append(ratio)
            verdict = "ok" if ratio <= TARGET else "over target"
            middle = statistics.median(ours) / statistics.median(theirs)
            print(
                f"  ratio of bests {ratio:.3f} (target <= {TARGET}) {verdict}; "
                f"of medians {middle:.3f}"
            )
        return 0 if all(r <= TARGET for r in ratios) else 1
    finally:
        registry.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
