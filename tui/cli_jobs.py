"""`imgcache pull` and `imgcache add`: fill a cache from the command line.

Both run jobs on the same `imgcache.backends.jobs.queue.JobQueue` the app uses. On a terminal
they draw a progress bar per job; on a pipe they print plain lines,
`pull docker.io/x:y -> /path: fetching 3/12 layers`, at most every few seconds
per job, then `... : done` or `... : failed: reason`. With `--json` the progress
goes to stderr and stdout gets one JSON document when the jobs have ended: an
array, one object per job (`job_dict`). Ctrl-C cancels every job (their tools'
process groups are killed, their temp files removed). A reference the grammar
refuses, or one that would name a file outside the cache, is a usage error found
before any job starts. Exit status: 0 when every job is done, 1 when any failed
or was cancelled, 2 for usage errors, 130 after Ctrl-C. Every name and message
printed goes through `printable`.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from imgcache.backends import config as config_mod
from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
from imgcache.tui.cli_common import (
    Formatter,
    add_common_options,
    load_settings,
    print_json,
    usage,
)
from imgcache.tui.format import printable

#: Seconds between two plain progress lines of the same job.
PLAIN_INTERVAL = 5.0
_BACKENDS = ("auto", "runtime", "builtin")

_PULL_EPILOG = """\
KIND in --to is singularity (or apptainer), enroot or podman; the job follows from
it: a SIF for singularity, a .sqsh (as `enroot import` names it) for enroot, an
oci-archive for podman. --to KIND:PATH names a cache directory outright.

examples:
  imgcache pull --cuda --to singularity          the CUDA default image as a SIF
  imgcache pull --cpu --cuda --rocm --to enroot  every default, as enroot files
  imgcache pull --cuda --pool gpu --to enroot    the CUDA default of pool gpu
  imgcache pull nvcr.io/nvidia/pytorch:25.09-py3 --username '$oauthtoken'
"""


def register(sub: Any) -> None:
    """Add the `pull` and `add` subcommands to the `imgcache` subparsers `sub`."""
    p = sub.add_parser(
        "pull",
        help="fetch images from a registry into a cache",
        description="Fetch images from their registry into a cache: a SIF (apptainer pull), "
        "an enroot .sqsh (enroot import) or an oci-archive (podman save), written to a hidden "
        "temp file and renamed into place when complete.",
        epilog=_PULL_EPILOG,
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
    p.add_argument("refs", metavar="REF", nargs="*", help="image references")
    for env, what in (("cpu", "CPU"), ("cuda", "NVIDIA (CUDA)"), ("rocm", "AMD (ROCm)")):
        p.add_argument(f"--{env}", action="store_true", help=f"also the {what} default image")
    p.add_argument(
        "--pool",
        metavar="NAME",
        help="--cpu, --cuda, --rocm: the defaults of this resource pool of master.yaml",
    )
    _job_options(p)
    p.add_argument(
        "--username",
        metavar="USER",
        help="registry user; password from IMGCACHE_PASSWORD or asked on the terminal",
    )
    p.add_argument(
        "--backend",
        choices=_BACKENDS,
        help="runtime (apptainer, enroot, podman) or builtin (skopeo, umoci, mksquashfs, "
        "siftool); default: the config's jobs.backend, else auto",
    )
    p.add_argument("--create", action="store_true", help="enroot: also `enroot create` it for you")
    p.set_defaults(handler=cmd_pull, writes=True)

    p = sub.add_parser(
        "add",
        help="put a local SIF, .sqsh or archive into a cache under a reference",
        description="Put a local image file into a cache under REF, after checking that it is "
        "a valid image of a kind the cache holds (manage-singularity-cache -i FILE REF).",
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
    p.add_argument("file", metavar="FILE")
    p.add_argument("ref", metavar="REF")
    _job_options(p)
    p.set_defaults(handler=cmd_add, writes=True)


def _job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", metavar="KIND[:PATH]", help="the cache to fill (see below)")
    p.add_argument("--force", action="store_true", help="replace an image that is already there")
    p.add_argument(
        "--json", action="store_true", help="progress on stderr; the jobs' results as JSON"
    )


# --- choosing the cache ------------------------------------------------------------


def pick_cache(settings: Settings, to: str | None, fits: Callable[[CacheSpec], bool]) -> CacheSpec:
    """The cache `--to` names, or the only configured one that `fits`."""

    if to and ":" in to:
        try:
            return config_mod.parse_cache_arg(to, "--to")
        except config_mod.ConfigError as exc:
            raise usage(str(exc)) from None
    candidates = [c for c in settings.caches if fits(c)]
    if to:
        kind = config_mod.KIND_ALIASES.get(to.strip().lower())
        if kind is None:
            raise usage(f"--to {to}: use singularity, enroot, podman or KIND:PATH")
        candidates = [c for c in settings.caches if c.kind is kind]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        what = f"no {to} cache" if to else "no cache"
        raise usage(f"{what} is configured; pass --to KIND:PATH or --cache KIND:PATH")
    listed = ", ".join(c.label for c in candidates)
    raise usage(f"several caches fit ({listed}); pick one with --to KIND:PATH")


def _check_root(cache: CacheSpec) -> None:

    problems = config_mod.check_cache_paths([cache])
    if problems:
        raise usage(problems[0])


def check_ref(text: str, cache: CacheSpec, what: str = "") -> None:
    """A usage error for a reference the grammar refuses, or one whose file would not
    lie inside the cache: found before any job starts, so no tool runs."""
    from imgcache.backends.inventory import caches, refs

    try:
        caches.target_path(cache.kind, cache.path, refs.parse(text))
    except refs.RefError as exc:
        where = f" ({what})" if what else ""
        raise usage(f"{text}{where}: not an image reference: {exc}") from None


# --- the commands ------------------------------------------------------------------


def cmd_pull(args: argparse.Namespace) -> int:
    """`imgcache pull`."""
    from imgcache.backends.inventory.defaults import pool_defaults, resolve_defaults
    from imgcache.backends.jobs.credentials import CredentialsError, ask_password
    from imgcache.backends.jobs.kinds import fetch_kind

    settings = load_settings(args)
    refs_wanted: list[tuple[str, str]] = [(ref, "") for ref in args.refs]
    envs = [env for env in ("cpu", "cuda", "rocm") if getattr(args, env)]
    if args.pool is not None and not envs:
        raise usage("--pool picks whose defaults --cpu, --cuda, --rocm pull: name one of them")
    if envs:
        if args.pool is None:
            defaults = resolve_defaults(settings)[1]
        else:
            found = pool_defaults(settings, args.pool)
            if found is None:
                names = ", ".join(config_mod.shown(p.name) for p in settings.pools)
                raise usage(
                    f"--pool {config_mod.shown(args.pool)}: no such resource pool in "
                    f"master.yaml (known: {names or 'none'})"
                )
            defaults = found
        by_env = {d.env: d for d in defaults}
        for env in envs:
            default = by_env.get(env)
            if default is None:
                raise usage(f"no {env} default image is configured")
            if default.ref is None:
                raise usage(
                    f"the {env} default is {default.value!r}, a file, not a reference to pull"
                )
            label = f"pool {args.pool} {env} default" if args.pool else f"{env} default"
            refs_wanted.append((default.value, label))
    if not refs_wanted:
        raise usage("name images to pull, or --cpu, --cuda, --rocm for the defaults")
    cache = pick_cache(settings, args.to, lambda c: True)
    _check_root(cache)
    for ref, label in refs_wanted:
        check_ref(ref, cache, label)
    creds = None
    if args.username:
        try:
            creds = ask_password(args.username)
        except CredentialsError as exc:
            raise usage(str(exc)) from None
    requests = [
        JobRequest(
            fetch_kind(cache.kind),
            ref,
            cache,
            backend=args.backend,
            credentials=creds,
            replace=args.force,
            create=args.create,
            label=label,
        )
        for ref, label in dict.fromkeys(refs_wanted)
    ]
    return run_jobs(settings, requests, as_json=args.json)


def cmd_add(args: argparse.Namespace) -> int:
    """`imgcache add FILE REF`."""
    from imgcache.backends.inventory import probe
    from imgcache.backends.inventory.caches import NATIVE_FORMATS
    from imgcache.backends.inventory.model import Format

    settings = load_settings(args)
    if not os.path.isfile(args.file):
        raise usage(f"{args.file}: no such file")
    probed = probe.probe_path(args.file)
    # What is wrong with the file comes first, before which cache could take it.
    if probed.format is Format.UNKNOWN or probed.not_image is not None:
        what = probed.not_image or probed.note or "no image header"
        if probed.note and probed.note.startswith(what):
            what = probed.note  # the same words, with what to do about it
        elif probed.note == probe.NO_HEADER and what != probed.note:
            what = f"{what} ({probed.note})"
        raise usage(f"{args.file} is not an image: {what}")
    if probed.corrupt:
        raise usage(f"{args.file} is a broken {probed.format.value}: {probed.error}")
    fmt = probed.format
    cache = pick_cache(settings, args.to, lambda c: fmt in NATIVE_FORMATS[c.kind])
    _check_root(cache)
    check_ref(args.ref, cache)
    request = JobRequest(
        "add", args.ref, cache, source=os.path.abspath(args.file), replace=args.force
    )
    return run_jobs(settings, [request], as_json=args.json)


def job_dict(status: JobStatus) -> dict[str, Any]:
    """One finished job as `pull --json` and `add --json` print it."""
    request = status.request
    return {
        "kind": request.kind,
        "ref": request.ref,
        "label": request.label,
        "cache": request.cache.kind.value,
        "root": request.cache.path,
        "source": request.source,
        "path": status.target or None,
        "state": status.state.value,
        "message": status.message,
        "backend": status.backend or None,
        "log": status.log_path or None,
        "seconds": round(status.finished - status.started, 3)
        if status.finished is not None and status.started is not None
        else None,
    }


def run_jobs(settings: Settings, requests: Sequence[JobRequest], *, as_json: bool = False) -> int:
    """Run `requests` on a job queue, showing progress (on stderr with `as_json`, which
    prints the results as JSON on stdout at the end); returns the exit status."""
    # Here, not at the top: the queue brings every job kind and its tools, which
    # `imgcache list` (and a TAB) parse past without needing.
    from imgcache.backends.jobs.queue import JobQueue

    events: queue.Queue[JobStatus] = queue.Queue()
    jobs = JobQueue(settings, on_update=events.put)
    for path in jobs.cleanup_stale():
        print(
            f"imgcache: removed a leftover of an interrupted job: {printable(path)}",
            file=sys.stderr,
        )
    stream = sys.stderr if as_json else sys.stdout
    view = _RichView(stream) if stream.isatty() else _PlainView(stream)
    ids = [jobs.submit(request).id for request in requests]
    interrupted = False
    try:
        with view:
            finished: dict[int, JobStatus] = {}
            while len(finished) < len(ids):
                try:
                    status = events.get(timeout=0.5)
                except queue.Empty:
                    continue
                except KeyboardInterrupt:
                    if interrupted:
                        raise
                    interrupted = True
                    view.note("interrupted: cancelling every job (Ctrl-C again to quit now)")
                    jobs.cancel_all()
                    continue
                view.update(status)
                if status.state.finished:
                    finished[status.id] = status
    finally:
        jobs.shutdown(cancel=True)
    if jobs.log_problem:
        problem = printable(jobs.log_problem)
        print(f"imgcache: {problem} (the jobs ran all the same)", file=sys.stderr)
    if interrupted:
        return 130
    if as_json:
        print_json([job_dict(finished[job_id]) for job_id in ids])
    failed = [s for s in finished.values() if s.state is not JobState.DONE]
    return 1 if failed else 0


class _PlainView:
    """Plain lines for pipes and logs: a line per job every few seconds at most."""

    def __init__(self, stream: TextIO) -> None:
        self._last: dict[int, float] = {}
        self.stream = stream

    def __enter__(self) -> _PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()

    def note(self, text: str) -> None:
        print(f"imgcache: {printable(text)}", file=sys.stderr, flush=True)

    def update(self, status: JobStatus) -> None:
        now = time.monotonic()
        if status.state.finished:
            if status.state is JobState.DONE:
                text = status.message
            else:
                text = f"{status.state.value}: {status.message}"
                text += f" (log: {status.log_path})" if status.log_path else ""
            print(printable(f"{status.title}: {text}"), file=self.stream, flush=True)
            return
        if status.state is JobState.QUEUED:
            return
        if now - self._last.get(status.id, -PLAIN_INTERVAL) < PLAIN_INTERVAL:
            return
        self._last[status.id] = now
        backend = f" [{status.backend}]" if status.backend else ""
        print(printable(f"{status.title}: {status.phase}{backend}"), file=self.stream, flush=True)


def _text(text: str = "", style: str = "") -> Any:
    """A rich `Text` (rich is imported only when a terminal shows progress bars)."""
    from rich.text import Text as RichText

    return RichText(text, style=style)


class _RichView:
    """A progress bar per job on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[phase]}"),
            console=Console(file=stream),
        )
        self._tasks: dict[int, Any] = {}

    def __enter__(self) -> _RichView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def note(self, text: str) -> None:
        self.progress.console.print(_text(printable(text), style="yellow"))

    def update(self, status: JobStatus) -> None:
        from rich.markup import escape

        task = self._tasks.get(status.id)
        # The columns read markup: every piece of data is escaped (a ref or a tool's
        # message may hold "["), and printable (it may hold ESC).
        title = escape(printable(f"{status.request.kind} {status.request.ref}"))
        if task is None:
            task = self._tasks[status.id] = self.progress.add_task(title, total=1.0, phase="")
        phase = escape(printable(status.phase))
        if status.backend:
            phase += f" [dim]{escape(printable(status.backend))}[/]"
        completed = status.fraction if status.fraction is not None else None
        self.progress.update(task, completed=completed, phase=phase)
        if status.state.finished:
            style = "green" if status.state is JobState.DONE else "red"
            message = escape(printable(status.message))
            self.progress.update(task, phase=f"[{style}]{message}[/]")
            if status.state is not JobState.DONE:
                self.progress.console.print(
                    _text(printable(f"{status.title}: {status.message}"), style="red")
                )
                if status.log_path:
                    self.progress.console.print(_text(printable(f"  log: {status.log_path}")))
