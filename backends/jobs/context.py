"""What a job kind gets to do its work: `JobContext`, and `Beside` for work run next to it.

The context carries the request, runs the job's tools with its log and cancel
token (watching for a full disk), reports progress to the queue, and hands out
a private scratch directory that it removes when the job ends. The tools a job
runs get `TMPDIR` (and skopeo `--tmpdir`) inside that directory (`tool_env`,
`tool_tmpdir`), so what they stage (skopeo's copy of a whole image for an
oci-archive, podman's `storageNNN`) stays in the configured scratch space and
goes with it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import IO, Generic, TypeVar

from imgcache.backends.config import Settings
from imgcache.backends.inventory import refs
from imgcache.backends.jobs import publish, safedirs
from imgcache.backends.jobs.states import JobStatus
from imgcache.backends.tools.run import CancelToken, Completed, Runner, run

__all__ = ["Beside", "JobContext"]

T = TypeVar("T")


class JobContext:
    """What a job kind gets to do its work: the request, a runner, progress, scratch space."""

    def __init__(
        self,
        status: JobStatus,
        settings: Settings,
        cancel: CancelToken,
        report: Callable[..., None],
        logfile: IO[str],
    ) -> None:
        self.request = status.request
        self.token = status.token
        self.settings = settings
        self.cancel = cancel
        self.log = logfile
        self.report = report
        """Hands changes of the job's `JobStatus` (target, backend, phase...) to the queue."""
        self.ref: refs.Reference | None = None
        self.target = ""
        self.temp = ""
        self.need: int | None = None
        """About how many bytes the result needs, for a "no space" message."""
        self.writing_to = ""
        """The path the running step writes into, for a "no space" message."""
        self.saw_no_space = False
        self.publication: publish.Publication | None = None
        """Where the result is being written, once the job has prepared it."""
        self._workdir: str | None = None
        self._removals: list[threading.Thread] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        writes_to: str | None = None,
        **kwargs: object,
    ) -> Completed:
        """`tools.run.run` with this job's log and cancel token."""
        if writes_to is not None:
            self.writing_to = writes_to
        return self._run(argv, self.log, **kwargs)

    def _run(self, argv: Sequence[str], logfile: IO[str], **kwargs: object) -> Completed:
        on_line = kwargs.pop("on_line", None)

        def watch(line: str) -> None:
            # Tools print usage text after the error (siftool), so the error may
            # not be among the last lines a ToolError keeps: note it as it passes.
            if "no space left on device" in line.lower():
                self.saw_no_space = True
            if on_line is not None:
                on_line(line)  # type: ignore[operator]

        return run(argv, cancel=self.cancel, logfile=logfile, on_line=watch, **kwargs)  # type: ignore[arg-type]

    def beside(self, work: Callable[[Runner], T], name: str) -> Beside[T]:
        """Start `work` on its own thread while the job goes on with its next step.

        `work` gets a runner like `run` (same cancel token, same watch for a full
        disk). Its log lines are held back and written into the job log when
        `Beside.result` is taken, so the log still reads one command after another.
        """
        return Beside(self, work, name)

    def progress(self, fraction: float | None, phase: str) -> None:
        """Report progress (0..1 or None) and what the job is doing now."""
        self.report(fraction=fraction, phase=phase)

    def note(self, text: str) -> None:
        """Write a line of our own into the job log."""
        self.log.write(f"# {text}\n")
        self.log.flush()

    def workdir(self) -> str:
        """A private scratch directory for this job, created on first use.

        Named `imgcache-work-<token>.<random>`: the token tells a later job whose it
        was, the random part (made by `mkdtemp`, mode 0700) keeps anyone who
        guessed the name from having put a link or a directory of theirs there.
        """
        if self._workdir is None:
            self._join_removals()  # a released one may still be going
            base = publish.work_base()
            os.makedirs(base, mode=0o700, exist_ok=True)
            prefix = f"{publish.WORKDIR_PREFIX}{self.token}."
            self._workdir = tempfile.mkdtemp(prefix=prefix, dir=base)
            self.note(f"scratch directory {self._workdir}")
        return self._workdir

    def open_temp(self, flags: int = os.O_WRONLY) -> int:
        """Open the job's (reserved) temp file through its directory's descriptor, never a link."""
        pub = self.publication
        if pub is None:
            raise RuntimeError("the job has no temp file yet")
        return safedirs.open_file(pub.dir_fd, pub.temp_name, pub.directory, flags)

    def tool_tmpdir(self) -> str:
        """A directory for a tool's temporary files, in the job's scratch directory."""
        path = os.path.join(self.workdir(), "tmp")
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        return path

    def tool_env(self) -> dict[str, str]:
        """`TMPDIR` for a tool: `tool_tmpdir`."""
        return {"TMPDIR": self.tool_tmpdir()}

    def discard(self, path: str) -> None:
        """Start removing `path` (a tree in the scratch directory) on a thread.

        Removing an unpacked image costs about as much as the next step, and the
        two use different resources (the kernel freeing pages against mksquashfs
        or the disk), so they overlap. `close` waits for every removal.
        """
        thread = threading.Thread(
            target=shutil.rmtree,
            args=(path,),
            kwargs={"ignore_errors": True},
            name=f"imgcache-rm-{self.token}",
            daemon=True,
        )
        thread.start()
        self._removals.append(thread)

    def release_workdir(self) -> None:
        """Start removing the whole scratch directory; the job is done with it."""
        if self._workdir is not None:
            path, self._workdir = self._workdir, None
            self.discard(path)

    def _join_removals(self) -> None:
        while self._removals:
            self._removals.pop().join()

    def close(self) -> None:
        """Remove the scratch directory, after waiting for removals under way."""
        self._join_removals()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


class Beside(Generic[T]):
    """Work a job runs on its own thread beside its main line (`JobContext.beside`)."""

    def __init__(self, ctx: JobContext, work: Callable[[Runner], T], name: str) -> None:
        self._ctx = ctx
        self._name = name
        self._log = io.StringIO()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._writes_to: str | None = None
        self._logged = False
        self._thread = threading.Thread(
            target=self._main, args=(work,), name=f"imgcache-{name}", daemon=True
        )
        self._thread.start()

    def _main(self, work: Callable[[Runner], T]) -> None:
        try:
            self._value = work(self._runner)
        except BaseException as exc:  # handed to whoever takes the result
            self._error = exc

    def _runner(
        self, argv: Sequence[str], *, writes_to: str | None = None, **kwargs: object
    ) -> Completed:
        if writes_to is not None:
            self._writes_to = writes_to
        return self._ctx._run(argv, self._log, **kwargs)

    def wait(self) -> None:
        """Wait for the work and put its log lines into the job log; never raises.

        For a main line that failed: its error is the one to report.
        """
        self._thread.join()
        if not self._logged:
            self._logged = True
            held = self._log.getvalue()
            if held:
                self._ctx.log.write(f"# {self._name}, run beside the step above:\n{held}")
                self._ctx.log.flush()

    def result(self) -> T:
        """Wait for the work; raise what it raised, else return what it returned."""
        self.wait()
        if self._error is not None:
            if self._writes_to is not None:
                # A "no space" message must name the filesystem this work filled.
                self._ctx.writing_to = self._writes_to
            raise self._error
        return self._value  # type: ignore[return-value]
