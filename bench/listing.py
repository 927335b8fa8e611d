"""Benchmark `imgcache list` as a table against `imgcache list --json` over 20,000 images.

The installed command is run as an admin runs it, start-up, scan and all, three ways:

- `imgcache list --json > FILE`, the baseline: the same scan, then JSON;
- `imgcache list > FILE`: the plain table a script or `less` gets;
- `imgcache list` on a pseudo-terminal of 100 columns: the coloured table an admin
  sees, folded for the width (the bench reads the terminal as fast as it can);

and, for scale, `imgcache list --finding corrupt > FILE`: the same start-up and scan
with a table of a few rows, so what is left of the others is what printing costs.

Target: each table costs at most 1.5x the JSON (the median of `--repeat` runs each,
interleaved). Each ratio is printed with PASS or FAIL; any FAIL makes the exit
status 1. The outputs are checked too: one line per image on the file, a JSON
entry per image, and no line wider than the terminal but a whole reference.

The cache is the scan bench's (`bench/scan.py`, `build_templates` and `build_cache`):
sparse files whose headers come from images made by mksquashfs, siftool, skopeo and
umoci, in the singularity, enroot and podman layouts, with the sizes of real images.

    .venv/bin/python bench/listing.py [--images 20000] [--repeat 3] [--columns 100]
    .venv/bin/python bench/listing.py --keep      # leave the cache for the next run

It is a benchmark, not a test: pytest does not collect bench/.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import pty
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.scan import build_cache, build_templates  # noqa: E402
from tests.builders import have  # noqa: E402

TARGET = 1.5
IMGCACHE = Path(sys.executable).parent / "imgcache"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def make_cache(base: Path, n: int) -> Path:
    """The bench cache of `n` images under `base` (reused when complete); returns its config."""
    done = base / ".complete"
    config = base / "config.toml"
    if done.exists():
        return config
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="imgcache-bench-tpl-", dir=base.parent) as tpl:
        templates = build_templates(Path(tpl))
    cache = build_cache(base / "caches", n, templates)
    config.write_text(
        "".join(f'[[cache]]\nkind = "{s.kind.value}"\npath = "{s.path}"\n\n' for s in cache.specs)
    )
    done.touch()
    print(f"cache of {n:,} images written in {cache.seconds:.1f} s", flush=True)
    return config


def _env() -> dict[str, str]:
    """The admin's environment without what would change the run: no site config, no
    master.yaml, no COLUMNS (the terminal's own size must count), colour on."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(IMGCACHE_SYSTEM_CONFIG="", IMGCACHE_DETERMINED_CONFIG="", TERM="xterm-256color")
    return env


def to_file(args: list[str], out: Path) -> float:
    """Seconds for `imgcache ARGS > out`."""
    start = time.perf_counter()
    with open(out, "wb") as f:
        subprocess.run(
            [str(IMGCACHE), *args], stdout=f, stdin=subprocess.DEVNULL, env=_env(), check=True
        )
    return time.perf_counter() - start


def to_pty(args: list[str], columns: int) -> tuple[float, bytes]:
    """Seconds for `imgcache ARGS` on a pseudo-terminal `columns` wide, and what it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(IMGCACHE), *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.DEVNULL,
        env=_env(),
        start_new_session=True,
    )
    os.close(slave)
    shown = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            raise RuntimeError("imgcache list on the terminal printed nothing for 60 s")
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed its side of the terminal
            break
        if not chunk:
            break
        shown += chunk
    proc.wait()
    seconds = time.perf_counter() - start
    os.close(master)
    if proc.returncode != 0:
        raise RuntimeError(f"imgcache list on the terminal exited {proc.returncode}")
    return seconds, bytes(shown)


def check(n: int, work: Path, shown: bytes, columns: int) -> list[str]:
    """What is wrong with the outputs of the last runs (nothing, when all is well)."""
    problems = []
    listed = json.loads((work / "list.json").read_text())
    if len(listed) != n:
        problems.append(f"--json listed {len(listed)} files, not {n}")
    table = (work / "list.txt").read_text().splitlines()
    if len(table) != n + 1:
        problems.append(f"the table on a file has {len(table)} lines, not {n + 1}")
    lines = _ANSI.sub("", shown.decode()).replace("\r\n", "\n").splitlines()
    wide = [line for line in lines if len(line) > columns and " " in line.strip()]
    if wide:
        problems.append(f"{len(wide)} lines on the terminal are wider than it: {wide[0]!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Build the cache, time the three runs, print the ratios; exit 1 on a miss."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20_000, help="cache size (default 20000)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to build (/tmp)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (median)")
    parser.add_argument("--columns", type=int, default=100, help="terminal width (default 100)")
    parser.add_argument("--keep", action="store_true", help="keep the cache for the next run")
    args = parser.parse_args(argv)
    missing = [t for t in ("mksquashfs", "siftool", "skopeo", "umoci") if not have(t)]
    if missing or not IMGCACHE.exists():
        print(f"needs {', '.join(missing) or IMGCACHE}", file=sys.stderr)
        return 2
    n = args.images
    base = Path(args.dir) / f"imgcache-bench-listing-{n}"
    config = make_cache(base, n)
    work = Path(tempfile.mkdtemp(prefix="imgcache-bench-out-", dir=args.dir))
    where = ["--config", str(config)]
    times: dict[str, list[float]] = {"scan": [], "json": [], "file": [], "pty": []}
    shown = b""
    print(
        f"imgcache list bench: {n:,} images, {args.repeat} runs each, interleaved, "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs",
        flush=True,
    )
    try:
        to_file(["list", "--json", *where], work / "list.json")  # warm the page cache
        for _ in range(args.repeat):
            # The same scan with next to nothing to print: what start-up and the scan cost.
            scan = ["list", "--finding", "corrupt", *where]
            times["scan"].append(to_file(scan, work / "scan.txt"))
            times["json"].append(to_file(["list", "--json", *where], work / "list.json"))
            times["file"].append(to_file(["list", *where], work / "list.txt"))
            seconds, shown = to_pty(["list", *where], args.columns)
            times["pty"].append(seconds)
        problems = check(n, work, shown, args.columns)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    median = {name: statistics.median(runs) for name, runs in times.items()}
    print(f"\n{'run':<44} {'median':>8} {'runs':>24} {'x json':>7}  target")
    ok = not problems
    rows = [
        ("scan", "imgcache list --finding corrupt > FILE", None),
        ("json", "imgcache list --json > FILE", None),
        ("file", "imgcache list > FILE", TARGET),
        ("pty", f"imgcache list on a {args.columns}-column terminal", TARGET),
    ]
    for key, label, target in rows:
        ratio = median[key] / median["json"]
        runs = " ".join(f"{t:.2f}" for t in times[key])
        verdict = ""
        if target is not None:
            passed = ratio <= target
            ok &= passed
            verdict = f"<= {target}  {'PASS' if passed else 'FAIL'}"
        print(f"{label:<44} {median[key]:7.2f}s {runs:>24} {ratio:7.2f}  {verdict}")
    for problem in problems:
        print(f"FAIL: {problem}")
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
