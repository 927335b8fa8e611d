"""Registry credentials: asked for once, handed to a tool privately, never written to a log.

A password never appears on a command line (other users see those in `ps`) nor
in a job log. Each tool gets it the way it reads credentials without a prompt:

- skopeo and podman: a containers auth file (`--authfile`), JSON with base64
  `user:password` per registry, in a private directory, mode 0600;
- enroot: a netrc file `$ENROOT_CONFIG_PATH/.credentials`, likewise private;
- apptainer/singularity: `APPTAINER_DOCKER_USERNAME`/`_PASSWORD` in the child's
  environment, the documented non-interactive way (`run()` never logs env).

The private directory lives under `$XDG_RUNTIME_DIR` (a per-user tmpfs) when
there is one, and is removed when the job ends, whatever way it ends.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

#: The environment variable a script can set instead of typing the password.
PASSWORD_ENV = "IMGCACHE_PASSWORD"


class CredentialsError(RuntimeError):
    """A password is needed and there is no way to ask for one."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A registry user name and password; the password never shows in a repr."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for ch in ("\n", "\r", "\0"):
            if ch in self.username or ch in self.password:
                raise CredentialsError("user names and passwords cannot contain line breaks")


def ask_password(username: str, *, env: Mapping[str, str] | None = None) -> Credentials:
    """Credentials for `username`: the password from IMGCACHE_PASSWORD, else the terminal.

    Raises `CredentialsError` when neither is available (a script without a tty).
    """
    env = os.environ if env is None else env
    if env.get(PASSWORD_ENV):
        return Credentials(username, env[PASSWORD_ENV])
    if not sys.stdin.isatty():
        raise CredentialsError(
            f"--username {username} needs a password: set {PASSWORD_ENV} or run on a terminal"
        )
    return Credentials(username, getpass.getpass(f"password for {username}: "))


def auth_registry(registry: str) -> str:
    """The key a containers auth file uses for `registry` (docker.io as c/image spells it)."""
    return "docker.io" if registry in ("docker.io", "index.docker.io") else registry


def auth_json(creds: Credentials, registries: list[str]) -> str:
    """A containers auth.json granting `creds` for each of `registries`."""
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    return json.dumps({"auths": {auth_registry(r): {"auth": token} for r in registries}})


def netrc_text(creds: Credentials, registries: list[str]) -> str:
    """enroot's `.credentials` netrc lines for `creds` on each of `registries`."""
    lines = []
    for registry in registries:
        # enroot matches the host without port; docker.io logins go to its auth host.
        host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
        hosts = ["auth.docker.io", "registry-1.docker.io"] if host == "docker.io" else [host]
        for name in hosts:
            lines.append(f"machine {name} login {creds.username} password {creds.password}")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def private_dir() -> Iterator[str]:
    """A directory only this user can enter, removed on exit."""
    # Read by hand, not through platformdirs' `user_runtime_dir`: that one
    # refuses a runtime dir whose mode is not exactly 0700 and, with none, warns
    # and names `/run/user/<uid>` or `$TMPDIR/runtime-<uid>` (which may not
    # exist). Any writable one will do here, else the temp dir: `mkdtemp` makes
    # the directory 0700 itself.
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not os.path.isdir(base) or not os.access(base, os.W_OK):
        base = None
    path = tempfile.mkdtemp(prefix="imgcache-cred-", dir=base)
    try:
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private(path: str, text: str) -> str:
    """Write `text` to a new file at `path` with mode 0600 from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@contextlib.contextmanager
def auth_file(creds: Credentials | None, registries: list[str]) -> Iterator[str | None]:
    """A private containers auth file for `creds`, or None without credentials."""
    if creds is None:
        yield None
        return
    with private_dir() as directory:
        yield write_private(os.path.join(directory, "auth.json"), auth_json(creds, registries))


@contextlib.contextmanager
def enroot_config(creds: Credentials | None, registries: list[str]) -> Iterator[str | None]:
    """A private ENROOT_CONFIG_PATH holding `.credentials`, or None without credentials."""
    if creds is None:
        yield None
        return
    with private_dir() as directory:
        write_private(os.path.join(directory, ".credentials"), netrc_text(creds, registries))
        yield directory


def apptainer_env(binary: str, creds: Credentials | None) -> dict[str, str]:
    """The environment apptainer (or singularity) reads registry credentials from."""
    if creds is None:
        return {}
    prefix = "SINGULARITY" if os.path.basename(binary) == "singularity" else "APPTAINER"
    return {
        f"{prefix}_DOCKER_USERNAME": creds.username,
        f"{prefix}_DOCKER_PASSWORD": creds.password,
    }
