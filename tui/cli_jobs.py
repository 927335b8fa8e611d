"""`imgcache pull` and `imgcache add`: fill a cache from the command line.

Both run jobs on the same `imgcache.backends.jobs.queue.JobQueue` the app uses. On a terminal
they draw a progress bar per job; on a pipe they print plain lines,
`pull docker.io/x:y -> /path: fetching 3/12 layers`, at most every few seconds
per job, then `... : done` or `... : failed: reason`. Ctrl-C cancels every
job (their tools' process groups are killed, their temp files removed).
Exit status: 0 when every job is done, 1 when any failed or was cancelled,
2 for usage errors, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from imgcache.backends import config as config_mod
from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.jobs.queue import JobQueue
from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
from imgcache.tui.cli_common import Formatter, add_common_options, load_settings, usage

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
    p.set_defaults(handler=cmd_pull)

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
    p.set_defaults(handler=cmd_add)


def _job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--to", metavar="KIND[:PATH]", help="the cache to fill (see below)")
    p.add_argument("--force", action="store_true", help="replace an image that is already there")


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


# --- the commands ------------------------------------------------------------------


def cmd_pull(args: argparse.Namespace) -> int:
    """`imgcache pull`."""
    from imgcache.backends.inventory.defaults import resolve_defaults
    from imgcache.backends.jobs.credentials import CredentialsError, ask_password
    from imgcache.backends.jobs.kinds import fetch_kind

    settings = load_settings(args)
    refs_wanted: list[tuple[str, str]] = [(ref, "") for ref in args.refs]
    envs = [env for env in ("cpu", "cuda", "rocm") if getattr(args, env)]
    if envs:
        _, defaults = resolve_defaults(settings)
        by_env = {d.env: d for d in defaults}
        for env in envs:
            default = by_env.get(env)
            if default is None:
                raise usage(f"no {env} default image is configured")
            if default.ref is None:
                raise usage(
                    f"the {env} default is {default.value!r}, a file, not a reference to pull"
                )
            refs_wanted.append((default.value, f"{env} default"))
    if not refs_wanted:
        raise usage("name images to pull, or --cpu, --cuda, --rocm for the defaults")
    cache = pick_cache(settings, args.to, lambda c: True)
    _check_root(cache)
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
    return run_jobs(settings, requests)


def cmd_add(args: argparse.Namespace) -> int:
    """`imgcache add FILE REF`."""
    from imgcache.backends.inventory import probe
    from imgcache.backends.inventory.caches import NATIVE_FORMATS

    settings = load_settings(args)
    if not os.path.isfile(args.file):
        raise usage(f"{args.file}: no such file")
    fmt = probe.probe_path(args.file).format
    cache = pick_cache(settings, args.to, lambda c: fmt in NATIVE_FORMATS[c.kind])
    _check_root(cache)
    request = JobRequest(
        "add", args.ref, cache, source=os.path.abspath(args.file), replace=args.force
    )
    return run_jobs(settings, [request])


def run_jobs(settings: Settings, requests: Sequence[JobRequest]) -> int:
    """Run `requests` on a job queue, showing progress; returns the exit status."""
    events: queue.Queue[JobStatus] = queue.Queue()
    jobs = JobQueue(settings, on_update=events.put)
    for path in jobs.cleanup_stale():
        print(f"imgcache: removed a leftover of an interrupted job: {path}", file=sys.stderr)
    view = _RichView() if sys.stdout.isatty() else _PlainView()
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
    if interrupted:
        return 130
    failed = [s for s in finished.values() if s.state is not JobState.DONE]
    return 1 if failed else 0


class _PlainView:
    """Plain lines for pipes and logs: a line per job every few seconds at most."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {}

    def __enter__(self) -> _PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()

    def note(self, text: str) -> None:
        print(f"imgcache: {text}", file=sys.stderr, flush=True)

    def update(self, status: JobStatus) -> None:
        now = time.monotonic()
        if status.state.finished:
            if status.state is JobState.DONE:
                text = status.message
            else:
                text = f"{status.state.value}: {status.message}"
                text += f" (log: {status.log_path})"
            print(f"{status.title}: {text}", flush=True)
            return
        if status.state is JobState.QUEUED:
            return
        if now - self._last.get(status.id, -PLAIN_INTERVAL) < PLAIN_INTERVAL:
            return
        self._last[status.id] = now
        backend = f" [{status.backend}]" if status.backend else ""
        print(f"{status.title}: {status.phase}{backend}", flush=True)


class _RichView:
    """A progress bar per job on a terminal."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[phase]}"),
        )
        self._tasks: dict[int, Any] = {}

    def __enter__(self) -> _RichView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def note(self, text: str) -> None:
        self.progress.console.print(f"[yellow]{text}")

    def update(self, status: JobStatus) -> None:
        task = self._tasks.get(status.id)
        title = f"{status.request.kind} {status.request.ref}"
        if task is None:
            task = self._tasks[status.id] = self.progress.add_task(title, total=1.0, phase="")
        phase = status.phase + (f" [dim]{status.backend}" if status.backend else "")
        completed = status.fraction if status.fraction is not None else None
        self.progress.update(task, completed=completed, phase=phase)
        if status.state.finished:
            style = "green" if status.state is JobState.DONE else "red"
            self.progress.update(task, phase=f"[{style}]{status.message}")
            if status.state is not JobState.DONE:
                self.progress.console.print(f"[red]{status.title}: {status.message}")
                self.progress.console.print(f"  log: {status.log_path}")
