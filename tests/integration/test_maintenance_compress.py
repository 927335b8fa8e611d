"""compress with the real tools: every codec and -noD, SIFs with extra descriptors, refusals.

Images are built by mksquashfs and siftool from a root filesystem that holds what
tends to get lost: device nodes, a fifo, a setuid file, hard links, files owned by
other users, xattrs (user.* and, as root, security.capability) and a 0711 root
directory. After compress, `unsquashfs -lls`/`-lln` list the same entries, sqfsdiff
finds the same contents, rdsquashfs the same xattrs, and siftool the same objects.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgcache.backends.config import Settings
from imgcache.backends.inventory.probe import probe_path
from imgcache.backends.maintenance import MaintenanceError
from imgcache.backends.maintenance.compress import compress_image
from imgcache.backends.tools.run import Cancelled, CancelToken
from tests.builders import have, make_rootfs, make_squashfs

pytestmark = pytest.mark.tools


@pytest.fixture(autouse=True)
def jobs_env() -> None:
    """Shadow the job tests' autouse fixture of this name: no registry is needed here."""


NOBODY = pwd.getpwnam("nobody")
CAP = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw+ep


def need(*tools: str) -> None:
    if not have(*tools):
        pytest.skip(f"needs {', '.join(tools)}")


#: Device nodes and foreign owners, made by mksquashfs itself so no root is needed.
PSEUDO = [
    *("-p", "dev d 755 0 0"),
    *("-p", "dev/null c 666 0 0 1 3"),
    *("-p", "dev/sda b 660 0 6 8 0"),
    *("-p", "etc/owned m 640 1234 5678"),
]


def special_rootfs(dest: Path) -> Path:
    """make_rootfs plus a fifo, a setuid file, hard links, a 0711 root and xattrs
    (security.capability too when root); PSEUDO adds devices and foreign owners."""
    root = make_rootfs(dest)
    os.mkfifo(root / "etc" / "initctl", 0o600)
    su = root / "bin" / "su"
    su.write_text("#!/bin/sh\n")
    su.chmod(0o4755)
    os.link(su, root / "bin" / "su-again")
    (root / "etc" / "owned").write_text("owned by someone else\n")
    with contextlib.suppress(OSError):
        os.setxattr(su, "security.capability", CAP)
    if os.geteuid() == 0:
        os.chown(root, 4321, 8765)
    root.chmod(0o711)
    return root


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("mksquashfs", "unsquashfs", "sqfs2tar", "tar2sqfs", "sqfsdiff", "rdsquashfs")
    return tmp_path_factory.mktemp("compress")


@pytest.fixture(scope="module")
def rootfs(work: Path) -> Path:
    return special_rootfs(work / "rootfs")


CASES = {
    "gzip": ("gzip", []),
    "lzma": ("lzma", []),
    "lzo": ("lzo", []),
    "xz": ("xz", []),
    "lz4": ("lz4", []),
    "zstd-noD": ("zstd", ["-noD"]),
    "lzo-noD": ("lzo", ["-noD"]),
    "all-raw": ("gzip", ["-noI", "-noD", "-noF", "-noX"]),
}


@pytest.fixture(scope="module")
def originals(work: Path, rootfs: Path) -> dict[str, Path]:
    return {
        name: make_squashfs(
            work / f"{name}.sqsh", comp=comp, options=[*opts, *PSEUDO], rootfs=rootfs
        )
        for name, (comp, opts) in CASES.items()
    }


def into_cache(tmp_path: Path, source: Path, rel: str = "nvidia+pytorch+25.09-py3.sqsh") -> Path:
    path = tmp_path / "cache" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, path)
    return path


def lines(*argv: str) -> list[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()


_ENTRY = re.compile(r"^(\S{10}) (\S+)\s+(\d+|\d+,\s*\d+) (\S+ \S+) (.*)$")


def entries(path: Path, numeric: bool = False, offset: int = 0) -> list[tuple[str, ...]]:
    """(mode, owner, size or device, time, name) of each entry; directory sizes blanked,
    since they depend on how the builder packs directories."""
    extra = ["-o", str(offset)] if offset else []
    out = []
    for line in lines("unsquashfs", "-lln" if numeric else "-lls", *extra, str(path)):
        match = _ENTRY.match(line)
        assert match, line
        mode, owner, size, when, name = match.groups()
        out.append((mode, owner, "-" if mode[0] == "d" else size.replace(" ", ""), when, name))
    return out


def xattrs(path: Path, *names: str) -> dict[str, list[str]]:
    return {n: lines("rdsquashfs", "-x", n, str(path)) for n in names}


@pytest.mark.parametrize("case", list(CASES))
def test_every_codec_becomes_zstd_with_the_same_entries_owners_modes_and_xattrs(
    case, originals, tmp_path
):
    path = into_cache(tmp_path, originals[case])
    os.chmod(path, 0o640)
    owner = (NOBODY.pw_uid, NOBODY.pw_gid) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(path, *owner)
    os.utime(path, (1_600_000_000, 1_600_000_000))
    before = (entries(path), entries(path, numeric=True))
    tags = xattrs(path, "/bin/su", "/etc/tagged.conf", "/bin/su-again")
    result = compress_image(str(path.parent), str(path), Settings(), force=True)
    assert result.replaced and result.format == "squashfs"
    info = probe_path(str(path)).squashfs
    assert info is not None
    assert (info.compression, info.data_compressed, info.block_size) == ("zstd", True, 1 << 20)
    assert (entries(path), entries(path, numeric=True)) == before
    assert xattrs(path, "/bin/su", "/etc/tagged.conf", "/bin/su-again") == tags
    # Same contents, owners and permissions, file by file.
    diff = subprocess.run(["sqfsdiff", "-a", str(originals[case]), "-b", str(path)], check=False)
    assert diff.returncode == 0
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777, st.st_mtime) == (*owner, 0o640, 1.6e9)
    assert result.after == st.st_size and result.before == originals[case].stat().st_size
    assert list(path.parent.iterdir()) == [path]  # no temporaries left


def test_uncompressed_data_shrinks_without_force(originals, tmp_path):
    path = into_cache(tmp_path, originals["lzo-noD"])
    seen = []
    result = compress_image(
        str(path.parent), str(path), Settings(), on_progress=lambda f, t: seen.append(f)
    )
    assert result.replaced and result.after < result.before
    assert result.codec_before == "lzo" and result.data_compressed_before is False
    assert "->" in result.summary and result.options == "zstd level 3, 1 MiB blocks"
    assert seen[-1] == 1.0 and all(f is None or 0 <= f <= 1 for f in seen)


def test_an_image_already_zstd_is_refused_unless_forced(originals, tmp_path):
    path = into_cache(tmp_path, originals["lzo-noD"])
    compress_image(str(path.parent), str(path), Settings())
    with pytest.raises(MaintenanceError, match="already zstd with compressed data") as caught:
        compress_image(str(path.parent), str(path), Settings())
    assert caught.value.reason == "nothing-to-do"


def test_a_new_image_that_is_not_smaller_is_discarded(work, rootfs, tmp_path):
    small = make_squashfs(work / "xz-1m.sqsh", comp="xz", options=["-b", "1M"], rootfs=rootfs)
    path = into_cache(tmp_path, small)
    inode = os.stat(path).st_ino
    # gzip -1 in 4 KiB blocks cannot beat xz in 1 MiB blocks on the text.
    worse = {"codec": "gzip", "level": 1, "block_size": "4K"}
    result = compress_image(str(path.parent), str(path), Settings(), **worse)
    assert not result.replaced and result.after >= result.before
    assert result.note.startswith("nothing to gain")
    assert os.stat(path).st_ino == inode and path.read_bytes() == small.read_bytes()
    assert list(path.parent.iterdir()) == [path]


#: A job reading an image: opens it, reads a little, waits, then reads to the end.
READER = """
import hashlib, sys
f = open(sys.argv[1], "rb")
h = hashlib.sha256(f.read(4096))
print("ready", flush=True)
sys.stdin.readline()
h.update(f.read())
print(h.hexdigest())
"""


def test_a_reader_keeps_reading_the_old_image_to_the_end(originals, tmp_path):
    path = into_cache(tmp_path, originals["lzo-noD"])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
    result = compress_image(str(path.parent), str(path), Settings())
    assert result.replaced
    out, _ = reader.communicate("go\n", timeout=30)
    assert out.strip() == digest
    assert hashlib.sha256(path.read_bytes()).hexdigest() != digest


def test_sockets_cannot_travel_in_tar_so_the_image_is_refused(work, tmp_path):
    tree = make_rootfs(tmp_path / "tree")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tree / "control.sock"))
    image = make_squashfs(tmp_path / "sock.sqsh", comp="lzo", options=["-noD"], rootfs=tree)
    path = into_cache(tmp_path, image)
    with pytest.raises(MaintenanceError, match=r"1 socket \(/control.sock\)"):
        compress_image(str(path.parent), str(path), Settings())
    assert list(path.parent.iterdir()) == [path]


def test_a_corrupt_image_is_refused(originals, tmp_path):
    path = into_cache(tmp_path, originals["gzip"])
    with path.open("r+b") as f:
        f.truncate(8192)
    with pytest.raises(MaintenanceError, match=r"corrupt .*truncated") as caught:
        compress_image(str(path.parent), str(path), Settings())
    assert caught.value.reason == "corrupt"


def test_cancel_leaves_the_original_and_no_temporaries(originals, tmp_path):
    path = into_cache(tmp_path, originals["lzo-noD"])
    data = path.read_bytes()
    token = CancelToken()

    def cancel_once_checking(fraction, text):
        if text.startswith("checking"):
            token.cancel()

    with pytest.raises(Cancelled):
        compress_image(
            str(path.parent), str(path), Settings(), cancel=token, on_progress=cancel_once_checking
        )
    assert path.read_bytes() == data and list(path.parent.iterdir()) == [path]


def test_a_file_changed_since_the_scan_is_refused(originals, tmp_path):
    from imgcache.backends.inventory.scan import file_stat

    path = into_cache(tmp_path, originals["lzo-noD"])
    seen = file_stat(os.lstat(path))
    os.utime(path, (1, 1))
    with pytest.raises(MaintenanceError, match="changed since it was scanned"):
        compress_image(str(path.parent), str(path), Settings(), expected=seen)


def test_configured_options_that_would_change_the_image_are_refused(originals, tmp_path):
    path = into_cache(tmp_path, originals["lzo-noD"])
    settings = Settings(squash_options=("-comp", "lzo", "-noD"))
    with pytest.raises(MaintenanceError, match="leaves part of the image uncompressed"):
        compress_image(str(path.parent), str(path), settings)


AS_NOBODY = """
import ctypes, importlib, json, os, pkgutil, sys
import imgcache.backends
# Everything is imported while still root: the checkout may sit in a private
# directory (mode 0700, as mktemp -d or a home makes it) that nobody cannot read.
for module in pkgutil.walk_packages(imgcache.backends.__path__, "imgcache.backends."):
    importlib.import_module(module.name)
from imgcache.backends.config import Settings
from imgcache.backends.maintenance import MaintenanceError
from imgcache.backends.maintenance.compress import compress_image
# Then the work runs as nobody, with no capabilities left: as an admin without root.
os.setgroups([])
os.setgid(int(sys.argv[4]))
os.setuid(int(sys.argv[3]))
assert os.geteuid() != 0 and os.getegid() != 0
# A process that changed its ids is made undumpable, which hides its /proc/PID/fd
# from its own children; a program nobody started itself is dumpable: be one.
ctypes.CDLL(None, use_errno=True).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
try:
    result = compress_image(sys.argv[1], sys.argv[2], Settings())
    print(json.dumps({"replaced": result.replaced}))
except MaintenanceError as exc:
    print(json.dumps({"error": str(exc), "reason": exc.reason}))
"""


@pytest.fixture
def nobody_cache() -> Iterator[Path]:
    """A cache directory owned by `nobody`, reachable by it (pytest's tmp_path is not)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    path = Path(tempfile.mkdtemp(prefix="imgcache-nobody-"))
    path.chmod(0o755)
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    yield path
    shutil.rmtree(path)


def as_nobody(root: Path, path: Path) -> dict[str, object]:
    ids = [str(NOBODY.pw_uid), str(NOBODY.pw_gid)]
    done = subprocess.run(
        [sys.executable, "-c", AS_NOBODY, str(root), str(path), *ids],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_without_root_owners_devices_and_modes_inside_the_image_survive(originals, nobody_cache):
    path = nobody_cache / "mine.sqsh"
    shutil.copy2(originals["lzo-noD"], path)
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    before = entries(path, numeric=True)
    assert any(e[1] == "1234/5678" for e in before) and any(e[0][0] == "c" for e in before)
    assert as_nobody(nobody_cache, path) == {"replaced": True}
    assert entries(path, numeric=True) == before
    assert probe_path(str(path)).compression == "zstd"
    assert os.stat(path).st_uid == NOBODY.pw_uid


def test_without_root_another_users_image_is_refused(originals, nobody_cache):
    path = nobody_cache / "roots.sqsh"
    shutil.copy2(originals["lzo-noD"], path)
    result = as_nobody(nobody_cache, path)
    assert result["reason"] == "owner"
    assert "owned by root; only root can replace it" in str(result["error"])
    assert path.read_bytes() == originals["lzo-noD"].read_bytes()


@pytest.mark.parametrize("meanwhile", ["replaced", "removed"])
def test_an_original_replaced_during_compress_is_not_overwritten(originals, tmp_path, meanwhile):
    path = into_cache(tmp_path, originals["lzo-noD"])

    def other_admin(fraction, text):
        # Another admin pulls a new version (or deletes it) while we are verifying ours.
        if text == "verifying" and path.exists():
            path.unlink()
            if meanwhile == "replaced":
                path.write_bytes(b"their new image")

    word = "removed" if meanwhile == "removed" else "changed"
    with pytest.raises(MaintenanceError, match=f"{word} while it was being compressed") as caught:
        compress_image(str(path.parent), str(path), Settings(), on_progress=other_admin)
    assert caught.value.reason == "changed"
    if meanwhile == "replaced":
        assert path.read_bytes() == b"their new image"
    assert list(path.parent.iterdir()) == ([path] if meanwhile == "replaced" else [])
