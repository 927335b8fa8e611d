"""Images from the builtin pull, read back with the real tools and started for real.

A busybox image is built here with umoci (static busybox from Debian's
busybox-static, applets as symlinks), with labels that hold line breaks, CR,
`$(...)` and backticks in keys and values, environment names that are not
shell names, and an image PS1. It is pushed to the test registry, pulled into
a SIF and imported into an enroot `.sqsh` by the builtin pipeline, and then:

- read back with siftool (groups, header, the objects) and unsquashfs
  (`/.singularity.d`, `/etc/rc`);
- enroot's `/etc/rc` from the image is run by dash and bash on this machine;
- where FUSE works, each image is mounted with squashfuse (the SIF at its
  partition's offset) and started with chroot: Apptainer's
  `/.singularity.d/actions/run` and enroot's `/etc/rc` run inside the image with
  hostile arguments, and the results are compared with Apptainer's semantics
  (arguments eval'ed unless SINGULARITY_NO_EVAL=1) and enroot's (passed as they are).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs.states import JobRequest
from imgcache.backends.tools.run import run
from tests.builders import make_squashfs
from tests.integration.conftest import Seeded
from tests.integration.helpers import (
    all_done,
    cli,
    run_jobs,
    sif_partition,
    squash_cat,
    squash_list,
)
from tests.integration.images import build_image

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("registry")]

REF = "imgcache-test/busybox:1"
APPLETS = ("sh", "printf", "mkdir", "echo", "env", "cat", "ls", "touch")
#: Every piece of these labels prints INJECTED if it ever runs as a command.
LABELS = {
    "evil\necho INJECTED-KEY": "v",
    "value": "one\recho INJECTED-CR\necho INJECTED-LF $(echo INJECTED-SUB) `echo INJECTED-TICK`",
    "$(echo INJECTED-KEY-SUB)": "`echo INJECTED-KEY-TICK`",
    "maintainer": "Admins <hpc@example.org> & co",
}
ENV = (
    "PATH=/bin",
    "PS1=image> ",
    "GREETING=hello world",
    'QUOTE=a"b$c`d',
    "1BAD=x",
    "é=1",
)
HOME = {"HOME": "/h", "PATH": "/bin"}
#: (argument, Apptainer's default semantics, SINGULARITY_NO_EVAL=1 and enroot); HOME=/h.
CASES = [
    (None, "[default arg]", "[default arg]"),
    ("$HOME", "[/h]", "[$HOME]"),
    ("a b", "[a b]", "[a b]"),
    ('a "b" c', "[a b c]", '[a "b" c]'),
    ("$(echo sub)", "[sub]", "[$(echo sub)]"),
    ("`echo tick`", "[tick]", "[`echo tick`]"),
    ("it's", "[it's]", "[it's]"),
]


@dataclass(frozen=True)
class Pulled:
    """The busybox image as the builtin pipeline wrote it into each cache."""

    sif: Path
    sqsh: Path
    sif_log: str
    sqsh_log: str
    digest: str
    """The manifest digest of the pushed image."""


def _static_busybox() -> bytes:
    path = shutil.which("busybox")
    if path is None:
        pytest.skip("needs busybox (Debian's busybox-static; scripts/test installs it)")
    data = Path(path).read_bytes()
    if b".interp" in data:
        pytest.skip(f"{path} is linked dynamically; the image needs busybox-static")
    return data


@pytest.fixture(scope="module")
def pulled(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Pulled:
    """Build the busybox image, push it, pull it into a SIF and a `.sqsh` (once)."""
    base = tmp_path_factory.mktemp("fidelity")
    layout = build_image(
        base / "busybox",
        [{"bin/busybox": _static_busybox()}],
        links={f"bin/{applet}": "busybox" for applet in APPLETS},
        env=ENV,
        entrypoint=("/bin/printf", "[%s]"),
        cmd=("default arg",),
        labels=LABELS,
    )
    pushed = seeded.registry.push(layout, "latest", REF)
    seeded.registry.push(layout, "latest", REF.split(":")[0])  # untagged: :latest
    inspect = ["skopeo", "inspect", "--tls-verify=false", f"docker://{pushed}"]
    digest = json.loads(run(inspect, capture=True).stdout)["Digest"]
    (base / "sif").mkdir()
    (base / "enroot").mkdir()
    sif_cache = CacheSpec(CacheKind.SINGULARITY, str(base / "sif"))
    enroot_cache = CacheSpec(CacheKind.ENROOT, str(base / "enroot"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTAINERS_REGISTRIES_CONF", str(seeded.registries_conf))
        mp.setenv("XDG_STATE_HOME", str(base / "state"))
        mp.setenv("IMGCACHE_TMPDIR", str(tempfile.mkdtemp(dir=base)))
        statuses = run_jobs(
            Settings(caches=(sif_cache, enroot_cache)),
            JobRequest("pull", REF, sif_cache, backend="builtin"),
            JobRequest("import", REF, enroot_cache, backend="builtin"),
        )
    all_done(statuses)
    logs = [Path(s.log_path).read_text() for s in statuses]
    return Pulled(Path(statuses[0].target), Path(statuses[1].target), *logs, digest)


# --- read back with the tools ---------------------------------------------------------


def _tool(*argv: str) -> str:
    return run(list(argv), capture=True).stdout.decode()


def test_the_sif_is_laid_out_as_apptainer_build_lays_it_out(pulled) -> None:
    rows = [line.split("|") for line in _tool("siftool", "list", str(pulled.sif)).splitlines()]
    objects = [[c.strip() for c in row] for row in rows if len(row) == 5 and row[0].strip() != "ID"]
    assert [o[4] for o in objects] == [
        "Def.FILE",
        "JSON.Generic",
        "JSON.Generic",
        "FS (Squashfs/*System/amd64)",
    ]
    # Every object in group 1: apptainer sign and verify refuse objects in no group.
    assert [o[1] for o in objects] == ["1", "1", "1", "1"]
    header = _tool("siftool", "header", str(pulled.sif))
    assert re.search(r"^Launch Script: +#!/usr/bin/env run-singularity$", header, re.M)
    assert pulled.sif.read_bytes()[:32] == b"#!/usr/bin/env run-singularity\n\0"
    # Published 0755 (the default file_mode 0644 with x where r), so ./image.sif runs.
    assert stat.S_IMODE(pulled.sif.stat().st_mode) == 0o755
    assert _tool("siftool", "dump", "1", str(pulled.sif)) == (
        f"bootstrap: docker\nfrom: docker.io/{REF}\n\n"
    )
    inspect = json.loads(_tool("siftool", "dump", "2", str(pulled.sif)))
    attributes = inspect["data"]["attributes"]
    assert list(attributes) == ["environment", "labels", "runscript", "deffile", "startscript"]
    assert inspect["type"] == "container"
    oci = json.loads(_tool("siftool", "dump", "3", str(pulled.sif)))
    assert oci["Entrypoint"] == ["/bin/printf", "[%s]"]


def test_singularity_d_reads_back_as_apptainer_writes_it(pulled) -> None:
    offset = sif_partition(pulled.sif)

    def cat(member: str) -> str:
        return squash_cat(pulled.sif, f".singularity.d/{member}", offset)

    runscript = cat("runscript")
    assert runscript.startswith('#!/bin/sh\nOCI_ENTRYPOINT=\'"/bin/printf" "[%s]"\'\n')
    assert '\neval "set ${SINGULARITY_OCI_RUN}"\nexec "$@"\n' in runscript
    env = cat("env/10-docker2singularity.sh")
    assert 'export GREETING="${GREETING:-"hello world"}"\n' in env
    assert 'export QUOTE="${QUOTE:-"a\\"b\\$c\\`d"}"\n' in env
    assert "1BAD" not in env and "é" not in env
    assert "environment left out of 10-docker2singularity.sh, not shell names: '1BAD', 'é'" in (
        pulled.sif_log
    )
    assert "SINGULARITY_APPNAME" in cat("env/95-apps.sh")
    assert 'if [ -z "${PS1:-}" ]; then' in cat("env/99-base.sh")
    assert 'test -n "$SINGULARITY_SHELL" -a -x "$SINGULARITY_SHELL"' in cat("actions/shell")
    labels = json.loads(cat("labels.json"))
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)",
        labels["org.opencontainers.image.created"],
    )
    assert labels["maintainer"] == "Admins <hpc@example.org> & co"
    assert "\\u003chpc@example.org\\u003e \\u0026 co" in cat("labels.json")
    files = squash_list(pulled.sif, offset)
    for link in ("singularity -> .singularity.d/runscript", ".run -> .singularity.d/actions/run"):
        assert link in files


def test_enroot_files_read_back_and_no_label_leaves_its_comment(pulled) -> None:
    assert pulled.sqsh.name == "imgcache-test+busybox+1.sqsh"
    rc = squash_cat(pulled.sqsh, "etc/rc")
    head, _, body = rc.partition("\n\n")
    assert head.count("\n") == len(LABELS) - 1
    assert all(line.startswith("# ") for line in head.split("\n"))
    assert body.startswith('mkdir -p "/" 2> /dev/null\n')
    assert "    exec '/bin/printf' '[%s]' 'default arg'\n" in body
    if os.path.exists("/etc/rc.local"):
        pytest.skip("/etc/rc would source this machine's /etc/rc.local")
    for shell in ("dash", "bash"):
        assert subprocess.run([shell, "-n", "-c", rc], check=False).returncode == 0
        for arg, _default, plain in CASES:
            done = subprocess.run(
                [shell, "-c", rc, "rc", *([] if arg is None else [arg])],
                capture_output=True,
                text=True,
                env=HOME | {"PATH": os.environ["PATH"]},
                check=False,
            )
            assert (done.returncode, done.stdout) == (0, plain), (shell, arg, done.stderr)
            assert "INJECTED" not in done.stdout + done.stderr


def test_enroot_names_untagged_and_digest_pulls_as_enroot_4_does(pulled, tmp_path) -> None:
    root = tmp_path / "enroot"
    root.mkdir()
    untagged, by_digest = REF.split(":")[0], f"{REF.split(':')[0]}@{pulled.digest}"
    spec = CacheSpec(CacheKind.ENROOT, str(root))
    requests = [JobRequest("import", r, spec, backend="builtin") for r in (untagged, by_digest)]
    all_done(run_jobs(Settings(caches=(spec,)), *requests))
    listing = cli("list", "--json", "--cache", f"enroot:{root}")
    refs = {Path(i["path"]).name: i["ref"] for i in json.loads(listing.stdout)}
    # imgcache reads its own names back as the references pulled (issue 17: an untagged
    # pull used to be written without a tag and read back as "imgcache-test:busybox").
    assert refs == {
        "imgcache-test+busybox+latest.sqsh": "imgcache-test/busybox:latest",
        f"imgcache-test+busybox+{pulled.digest}.sqsh": f"imgcache-test/busybox@{pulled.digest}",
    }
    again = run_jobs(Settings(caches=(spec,)), *requests)
    assert [s.message for s in again] == ["already present", "already present"]


# --- started for real: squashfuse + chroot ---------------------------------------------


def _fuse_skip_reason() -> str | None:
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing: no FUSE on this machine"
    if not shutil.which("squashfuse") or not shutil.which("fusermount3"):
        return "needs squashfuse and fuse3 (scripts/test installs them)"
    if os.geteuid() != 0:
        return "chroot needs root"
    return None


@contextlib.contextmanager
def _mounted(image: Path, offset: int, where: Path) -> Iterator[Path]:
    reason = _fuse_skip_reason()
    if reason:
        pytest.skip(reason)
    where.mkdir()
    options = ["-o", f"offset={offset}"] if offset else []
    done = subprocess.run(
        ["squashfuse", *options, str(image), str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"squashfuse cannot mount here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["fusermount3", "-u", str(where)], check=False)


def _chroot(root: Path, *argv: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [shutil.which("chroot") or "/usr/sbin/chroot", str(root), *argv],
        capture_output=True,
        text=True,
        env=HOME | (env or {}),
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "INJECTED" not in done.stdout + done.stderr
    return done.stdout


def test_the_sif_starts_with_apptainers_semantics(pulled, tmp_path) -> None:
    with _mounted(pulled.sif, sif_partition(pulled.sif), tmp_path / "mnt") as root:
        run_action = "/.singularity.d/actions/run"
        for arg, default, no_eval in CASES:
            args = [] if arg is None else [arg]
            assert _chroot(root, run_action, *args) == default, arg
            no = _chroot(root, run_action, *args, env={"SINGULARITY_NO_EVAL": "1"})
            assert no == no_eval, arg
        shown = _chroot(
            root,
            "/.singularity.d/actions/exec",
            "/bin/sh",
            "-c",
            'printf "%s|" "$GREETING" "$PS1" "$QUOTE" "$LD_LIBRARY_PATH"',
            # Apptainer starts the container without PS1; busybox sh would set its
            # own default when PS1 is unset, so it comes in set and empty.
            env={"PS1": ""},
        )
        # The image's PS1 is kept; 99-base.sh only fills in an empty one.
        assert shown == 'hello world|image> |a"b$c`d|/.singularity.d/libs|'


def test_the_enroot_image_starts_with_enroots_semantics(pulled, tmp_path) -> None:
    with _mounted(pulled.sqsh, 0, tmp_path / "mnt") as root:
        for arg, _default, plain in CASES:
            args = [] if arg is None else [arg]
            # enroot runs /etc/rc with the user's login shell: here the image's busybox sh.
            assert _chroot(root, "/bin/sh", "/etc/rc", *args) == plain, arg


@pytest.mark.parametrize(
    "options",
    [
        ["-comp", "gzip"],
        ["-comp", "lzo"],
        ["-comp", "lzo", "-noD"],
        ["-comp", "lz4"],
        ["-comp", "xz"],
        ["-comp", "zstd", "-Xcompression-level", "3", "-b", "1M"],
    ],
    ids=lambda options: " ".join(options[1:]),
)
def test_squashfuse_mounts_every_codec(options, tmp_path) -> None:
    # What the README says of squashfuse (Debian bookworm's 0.1.105) and the codecs.
    image = make_squashfs(tmp_path / "x.sqsh", comp=options[1], options=options[2:])
    with _mounted(image, 0, tmp_path / "mnt") as root:
        assert (root / "etc" / "os-release").read_text() == squash_cat(image, "etc/os-release")
