"""A real registry for the tests: Debian's `docker-registry` on 127.0.0.1, and a throttling proxy.

`Registry` starts the distribution registry on a free loopback port with its
storage in a test directory; `push` copies an OCI layout into it with skopeo.
`ThrottledProxy` forwards a loopback port to the registry at a fixed rate and can
drop every connection at once: the tests use it to stop a pull half-way.
Everything listens on 127.0.0.1 only, and every loop here is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from imgcache.backends.tools.run import run

START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """One `docker-registry serve` process on a free loopback port."""

    def __init__(self, directory: Path, *, htpasswd: Path | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        storage = directory / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        auth = ""
        if htpasswd is not None:
            auth = f"auth:\n  htpasswd:\n    realm: imgcache-test\n    path: {htpasswd}\n"
        config = directory / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
            f"http:\n  addr: {self.address}\n  secret: imgcache-test\n{auth}"
        )
        self._log = open(directory / "registry.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: see {self.directory}/registry.log")
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # 401 from an htpasswd registry: it is up
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not start")

    def push(self, layout: Path, tag: str, name: str, *, creds: str | None = None) -> str:
        """Copy `<layout>:<tag>` to `<registry>/<name>`; returns the pushed reference."""
        ref = f"{self.address}/{name}"
        auth = ["--dest-creds", creds] if creds else []  # test-only credentials
        run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                *auth,
                f"oci:{layout}:{tag}",
                f"docker://{ref}",
            ],
            capture=True,
        )
        return ref

    def stop(self) -> None:
        """Kill the registry (it holds nothing that needs a clean shutdown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()


class ThrottledProxy:
    """Forwards 127.0.0.1:<port> to a target at about `rate` bytes a second per direction."""

    def __init__(self, target_port: int, rate: int) -> None:
        self.target_port = target_port
        self.rate = rate
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.bytes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        chunk = max(1024, self.rate // 20)
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                data = src.recv(chunk)
                if not data:
                    break
                dst.sendall(data)
                with self._lock:
                    self.bytes += len(data)
                time.sleep(len(data) / self.rate)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def kill(self) -> None:
        """Stop accepting and reset every open connection, like a registry host going away."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            # shutdown, not just close: it wakes the threads blocked in recv and
            # tells the peer at once; a close alone waits for those threads.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


def throttled_mirror(registry_port: int, rate: int, conf: Path) -> ThrottledProxy:
    """A `ThrottledProxy` in front of the registry, written into `conf` as docker.io's
    mirror; docker.io's own location is a closed port, so a pull reaches only the proxy
    (and fails when the test cuts it off). Point CONTAINERS_REGISTRIES_CONF at `conf`."""
    proxy = ThrottledProxy(registry_port, rate)
    conf.write_text(
        "[[registry]]\n"
        'prefix = "docker.io"\n'
        f'location = "127.0.0.1:{free_port()}"\n'
        "insecure = true\n\n"
        "[[registry.mirror]]\n"
        f'location = "{proxy.address}"\n'
        "insecure = true\n"
    )
    return proxy
