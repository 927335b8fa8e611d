"""The exact command lines and environments of every adapter, credentials handed over privately.

apptainer and enroot cannot be installed on the test machines, so what imgcache
would run for them is checked here, list for list; the builtin pipeline and
podman run for real in tests/integration. The start-up files written into
images are tested in tests/unit/test_rootfs.py.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path

import pytest

from imgcache.backends.config import CacheSpec, Settings
from imgcache.backends.inventory import refs
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.jobs import credentials, rootfs
from imgcache.backends.jobs.context import JobContext
from imgcache.backends.jobs.credentials import Credentials
from imgcache.backends.jobs.kinds import enroot_import, pull, save
from imgcache.backends.jobs.runtime import enroot_files, singularity_files
from imgcache.backends.jobs.states import JobRequest, JobState, JobStatus
from imgcache.backends.tools import apptainer, enroot, siftool, skopeo, squashfs, umoci
from imgcache.backends.tools.run import CancelToken

CREDS = Credentials("alice", "pa ss:wörd")
SHA = "sha256:" + "0123456789abcdef" * 4


def _ctx(kind: str, ref: str, cache: CacheKind, creds: Credentials | None = None) -> JobContext:
    request = JobRequest(kind, ref, CacheSpec(cache, "/c"), credentials=creds)
    status = JobStatus(1, "h-1-1", request, JobState.RUNNING, "", None)
    ctx = JobContext(status, Settings(), CancelToken(), lambda **_: None, io.StringIO())
    ctx.ref = refs.parse(ref)
    ctx.temp = "/c/.imgcache-x.h-1-1.tmp"
    return ctx


SCRATCH_VARS = (
    "APPTAINER_CACHEDIR",
    "SINGULARITY_CACHEDIR",
    "APPTAINER_TMPDIR",
    "SINGULARITY_TMPDIR",
)


@pytest.fixture
def no_apptainer_vars(monkeypatch):
    for name in SCRATCH_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_apptainer_pull_keeps_its_cache_out_of_the_home(no_apptainer_vars, tmp_path) -> None:
    no_apptainer_vars.setenv("IMGCACHE_TMPDIR", str(tmp_path))
    assert pull.runtime_argv(
        "/usr/bin/apptainer", "/c/.t.tmp", "docker.io/library/ubuntu:22.04"
    ) == [
        "/usr/bin/apptainer",
        "pull",
        "--disable-cache",
        "/c/.t.tmp",
        "docker://docker.io/library/ubuntu:22.04",
    ]
    ctx = _ctx("pull", "ubuntu:22.04", CacheKind.SINGULARITY, CREDS)
    try:
        env = pull.runtime_env(ctx, "/usr/bin/apptainer")
        scratch = ctx.workdir()
        assert env == {
            "APPTAINER_DOCKER_USERNAME": "alice",
            "APPTAINER_DOCKER_PASSWORD": "pa ss:wörd",
            "APPTAINER_TMPDIR": scratch,
        }
        assert scratch.startswith(str(tmp_path) + "/")  # the job's scratch, removed with it
        assert pull.runtime_env(ctx, "/opt/bin/singularity")["SINGULARITY_TMPDIR"] == scratch
    finally:
        ctx.close()
    assert not os.path.exists(scratch)


@pytest.mark.parametrize("name", ["APPTAINER_CACHEDIR", "SINGULARITY_CACHEDIR"])
def test_apptainer_pull_uses_the_cache_the_admin_set(no_apptainer_vars, name) -> None:
    no_apptainer_vars.setenv(name, "/scratch/alice/apptainer-cache")
    argv = pull.runtime_argv("/usr/bin/apptainer", "/c/.t.tmp", "ubuntu:22.04")
    assert argv == ["/usr/bin/apptainer", "pull", "/c/.t.tmp", "docker://ubuntu:22.04"]
    # The variable itself reaches apptainer untouched: run() merges over os.environ.
    assert name not in apptainer.pull_env("/usr/bin/apptainer", "/w")


@pytest.mark.parametrize("name", ["APPTAINER_TMPDIR", "SINGULARITY_TMPDIR"])
def test_apptainer_pull_keeps_the_admins_tmpdir(no_apptainer_vars, name) -> None:
    no_apptainer_vars.setenv(name, "/scratch/alice/tmp")
    assert apptainer.pull_env("/usr/bin/apptainer", "/w") == {}
    assert apptainer.pull_env("/usr/bin/singularity", "/w") == {}


def test_apptainer_credentials_go_in_its_environment_only() -> None:
    assert credentials.apptainer_env("/usr/bin/apptainer", CREDS) == {
        "APPTAINER_DOCKER_USERNAME": "alice",
        "APPTAINER_DOCKER_PASSWORD": "pa ss:wörd",
    }
    assert credentials.apptainer_env("/opt/bin/singularity", CREDS) == {
        "SINGULARITY_DOCKER_USERNAME": "alice",
        "SINGULARITY_DOCKER_PASSWORD": "pa ss:wörd",
    }
    assert credentials.apptainer_env("apptainer", None) == {}


@pytest.mark.parametrize(
    ("ref", "user", "uri"),
    [
        ("ubuntu:22.04", None, "docker://ubuntu:22.04"),
        ("docker.io/library/ubuntu", None, "docker://ubuntu:latest"),
        (
            "determinedai/environments:cuda-11.3",
            None,
            "docker://determinedai/environments:cuda-11.3",
        ),
        (
            "nvcr.io/nvidia/pytorch:25.09-py3",
            "$oauthtoken",
            "docker://$oauthtoken@nvcr.io#nvidia/pytorch:25.09-py3",
        ),
        ("localhost:5000/a/b:1", None, "docker://localhost:5000#a/b:1"),
        (f"ubuntu@{SHA}", None, f"docker://ubuntu@{SHA}"),
        (f"ubuntu:22.04@{SHA}", None, f"docker://ubuntu@{SHA}"),
        (f"nvcr.io/nvidia/cuda@{SHA}", "u", f"docker://u@nvcr.io#nvidia/cuda@{SHA}"),
    ],
)
def test_enroot_uri(ref, user, uri) -> None:
    assert enroot.uri(refs.parse(ref), user) == uri


def test_enroot_takes_sha256_digests_only() -> None:
    with pytest.raises(refs.RefError, match="only sha256"):
        enroot.uri(refs.parse("ubuntu@sha512:" + "a" * 128))


@pytest.mark.parametrize(
    ("output", "takes"),
    [("4.1.2\n", True), ("4.0.0", True), ("3.5.0\n", False), ("", False), ("enroot 10.0", True)],
)
def test_digests_need_enroot_4(output, takes) -> None:
    assert enroot.takes_digests(output) is takes
    assert enroot.version_argv() == ["enroot", "version"]


def test_enroot_squash_options_that_would_need_quotes_are_refused() -> None:
    # enroot expands ${ENROOT_SQUASH_OPTIONS} unquoted: quotes would reach mksquashfs.
    with pytest.raises(ValueError, match="splits it on spaces"):
        enroot.import_env(["-comp", "zstd", "-e", "a b"])
    assert enroot.import_env(["-comp", "lzo", "-noD"]) == {
        "ENROOT_SQUASH_OPTIONS": "-comp lzo -noD"
    }


def test_enroot_import_command_and_environment() -> None:
    ctx = _ctx("import", "nvcr.io/nvidia/pytorch:25.09-py3", CacheKind.ENROOT, CREDS)
    assert enroot_import.runtime_argv(ctx) == [
        "enroot",
        "import",
        "--output",
        "/c/.imgcache-x.h-1-1.tmp",
        "docker://alice@nvcr.io#nvidia/pytorch:25.09-py3",
    ]
    assert enroot.import_env(Settings().squash_options, "/run/user/0/x") == {
        "ENROOT_SQUASH_OPTIONS": "-comp zstd -Xcompression-level 3 -b 1M",
        "ENROOT_CONFIG_PATH": "/run/user/0/x",
    }
    assert enroot.create_argv("nvidia+pytorch+25.09-py3", "/c/nvidia+pytorch+25.09-py3.sqsh") == [
        "enroot",
        "create",
        "--name",
        "nvidia+pytorch+25.09-py3",
        "/c/nvidia+pytorch+25.09-py3.sqsh",
    ]


def test_enroot_credentials_are_a_private_netrc() -> None:
    with credentials.enroot_config(CREDS, ["nvcr.io"]) as directory:
        path = os.path.join(directory, ".credentials")
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert Path(path).read_text() == "machine nvcr.io login alice password pa ss:wörd\n"
    assert not os.path.exists(directory)


def test_podman_commands() -> None:
    assert save.runtime_argvs("docker.io/library/ubuntu:22.04", "/c/.t.tmp", "/p/auth.json") == [
        ["podman", "pull", "--authfile", "/p/auth.json", "docker.io/library/ubuntu:22.04"],
        [
            "podman",
            "save",
            "--format=oci-archive",
            "-o",
            "/c/.t.tmp",
            "docker.io/library/ubuntu:22.04",
        ],
    ]


def test_auth_files_are_private_and_in_containers_format() -> None:
    with credentials.auth_file(CREDS, ["docker.io", "127.0.0.1:5000"]) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        auths = json.loads(Path(path).read_text())["auths"]
        token = base64.b64decode(auths["docker.io"]["auth"]).decode()
        assert token == "alice:pa ss:wörd" and "127.0.0.1:5000" in auths
    assert not os.path.exists(path)
    with credentials.auth_file(None, ["docker.io"]) as nothing:
        assert nothing is None


def test_passwords_need_a_terminal_or_the_environment() -> None:
    assert credentials.ask_password("bob", env={"IMGCACHE_PASSWORD": "pw"}).password == "pw"
    with pytest.raises(credentials.CredentialsError, match="IMGCACHE_PASSWORD"):
        credentials.ask_password("bob", env={})  # pytest's stdin is not a terminal


def test_skopeo_commands(monkeypatch) -> None:
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", "/etc/test/registries.conf")
    conf = ["--registries-conf", "/etc/test/registries.conf"]
    policy = skopeo.global_args()[len(conf) :]
    assert skopeo.copy_argv("docker://a/b:1", "oci:/w/layout:image", authfile="/p/auth.json") == [
        "skopeo",
        *conf,
        *policy,
        "copy",
        "--retry-times",
        "2",
        "--src-authfile",
        "/p/auth.json",
        "docker://a/b:1",
        "oci:/w/layout:image",
    ]
    assert skopeo.inspect_raw_argv("a/b:1") == [
        "skopeo",
        *conf,
        *policy,
        "inspect",
        "--raw",
        "docker://a/b:1",
    ]


def test_skopeo_errors_shrink_to_their_message() -> None:
    tail = (
        'Getting image source signatures\ntime="x" level=fatal msg="reading blob: \\"oops\\" EOF"\n'
    )
    assert skopeo.one_line(tail) == 'reading blob: "oops" EOF'


def test_builtin_tool_commands() -> None:
    assert umoci.unpack_argv("/w/layout", "image", "/w/rootfs", as_rootless=False) == [
        "umoci",
        "raw",
        "unpack",
        "--image",
        "/w/layout:image",
        "/w/rootfs",
    ]
    assert umoci.unpack_argv("/w/l", "t", "/w/r", as_rootless=True)[3] == "--rootless"
    assert squashfs.mksquashfs_argv(
        "/w/rootfs", "/c/.t.tmp", Settings().squash_options, all_root=True, exclude_dev=True
    ) == [
        "mksquashfs",
        "/w/rootfs",
        "/c/.t.tmp",
        "-noappend",
        "-all-root",
        "-comp",
        "zstd",
        "-Xcompression-level",
        "3",
        "-b",
        "1M",
        "-progress",
        "-wildcards",
        "-e",
        "dev/*",
    ]
    assert siftool.add_partition_argv("/c/t.sif", "/w/fs", "arm64") == [
        "siftool",
        "add",
        "--datatype",
        "4",
        "--groupid",
        "1",
        "--parttype",
        "2",
        "--partfs",
        "1",
        "--partarch",
        "4",
        "/c/t.sif",
        "/w/fs",
    ]
    assert siftool.add_object_argv("/c/t.sif", "/w/Singularity", 1) == [
        "siftool",
        "add",
        "--datatype",
        "1",
        "--groupid",
        "1",
        "/c/t.sif",
        "/w/Singularity",
    ]
    assert siftool.add_object_argv("/c/t.sif", "/w/o.json", 6, "oci-config.json") == [
        "siftool",
        "add",
        "--datatype",
        "6",
        "--groupid",
        "1",
        "--filename",
        "oci-config.json",
        "/c/t.sif",
        "/w/o.json",
    ]


def test_mksquashfs_progress_becomes_a_fraction() -> None:
    seen: list[float] = []
    parse = squashfs.progress_parser(seen.append)
    for line in (
        "Parallel mksquashfs: Using 2 processors",
        "[====-      ] 30/120  25%",
        "[==|] 120/120 100%",
    ):
        parse(line)
    assert seen == [0.25, 1.0]


def test_manifest_lists_pick_this_machines_platform() -> None:
    arch = skopeo.host_arch()
    index = {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"digest": "sha256:other", "platform": {"architecture": "s390x", "os": "linux"}},
            {"digest": "sha256:mine", "platform": {"architecture": arch, "os": "linux"}},
        ],
    }
    assert skopeo.parse_manifest(json.dumps(index).encode()) == (None, "sha256:mine")
    manifest = {"layers": [{"size": 10}, {"size": 5}]}
    assert skopeo.parse_manifest(json.dumps(manifest).encode()) == (
        skopeo.ManifestInfo(2, 15),
        None,
    )


# --- writing into an image ------------------------------------------------------------


def test_writes_never_leave_the_rootfs(tmp_path) -> None:
    root = tmp_path / "rootfs"
    outside = tmp_path / "host-etc"
    outside.mkdir()
    (outside / "hosts").write_text("the host's own\n")
    root.mkdir()
    (root / "etc").symlink_to(outside)  # an image whose /etc points at an absolute path
    (root / "usr").mkdir()
    (root / "usr" / "x").symlink_to("../../../../..")
    singularity_files.write_singularity(
        root_str := str(root), {"Env": ["A=1"]}, ref="r", digest="d", arch="amd64"
    )
    enroot_files.write_enroot(root_str, {"Env": ["A=1"], "WorkingDir": "/usr/x/work"})
    assert (outside / "hosts").read_text() == "the host's own\n"
    assert rootfs.resolve(root_str, "etc/hosts").startswith(root_str + "/")
    assert (root / str(outside).lstrip("/") / "hosts").read_text() == ""
    assert (root / "work").is_dir()
