"""A failed pull says its cause first, against the session's real registry.

The session's registries.conf mirrors docker.io to the loopback registry and points
docker.io itself at a closed port, as a site whose nodes reach the internet only
through a mirror: a tag missing on the mirror makes skopeo report the closed port's
"connection refused" last and most prominently. The job must say "manifest unknown"
first, and a registry that answers in plain http must be met with the
registries.conf setting that allows it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import Seeded
from tests.integration.helpers import cli

pytestmark = [pytest.mark.tools, pytest.mark.xdist_group("registry")]


def _failed_line(stdout: str) -> str:
    """The reason in the plain `... : failed: REASON (log: FILE)` line of a job."""
    [line] = [text for text in stdout.splitlines() if ": failed: " in text]
    return re.sub(r" \(log: [^)]*\)$", "", line.split(": failed: ", 1)[1])


def test_a_tag_missing_on_the_mirror_says_manifest_unknown_first(
    tmp_path: Path, seeded: Seeded
) -> None:
    root = tmp_path / "sif"
    root.mkdir()
    done = cli("pull", "imgcache-test/meta:nope", "--to", f"singularity:{root}")
    assert done.returncode == 1
    reason = _failed_line(done.stdout)
    mirror = seeded.registry.address
    assert reason.startswith(
        f"skopeo: manifest unknown: the mirror {mirror} does not have imgcache-test/meta:nope;"
    ), reason
    # The upstream's failure is still told, after the cause, in a few words.
    assert reason.endswith("could not be reached (connection refused)"), reason
    assert "\n" not in reason and len(reason) < 200
    files = [p for p in root.rglob("*") if p.is_file() and ".imgcache-locks" not in p.parts]
    assert files == []  # nothing written under any name


def test_a_tag_missing_on_a_registry_without_mirror_says_manifest_unknown_first(
    tmp_path: Path, seeded: Seeded
) -> None:
    root = tmp_path / "enroot"
    root.mkdir()
    missing = seeded.direct_ref.rsplit(":", 1)[0] + ":nope"
    done = cli("pull", missing, "--to", f"enroot:{root}", "--backend", "builtin")
    assert done.returncode == 1
    reason = _failed_line(done.stdout)
    repo = missing.rsplit(":", 1)[0]
    assert reason == f"skopeo: manifest unknown: reading manifest nope in {repo}", reason


def test_a_registry_out_of_reach_says_so_first(tmp_path: Path) -> None:
    root = tmp_path / "sif"
    root.mkdir()
    # Nothing listens on port 1 of the loopback.
    done = cli("pull", "127.0.0.1:1/hpc/tool:1", "--to", f"singularity:{root}")
    assert done.returncode == 1
    reason = _failed_line(done.stdout)
    assert reason.startswith("skopeo: connection refused: "), reason
    assert reason.endswith("(is the registry reachable?)") and "127.0.0.1:1" in reason


@pytest.mark.parametrize(
    ("kind", "tool"),
    [("singularity", "skopeo"), pytest.param("podman", "podman", id="podman")],
)
def test_a_registry_answering_in_http_gets_insecure_suggested(
    tmp_path: Path, seeded: Seeded, monkeypatch: pytest.MonkeyPatch, kind: str, tool: str
) -> None:
    if tool == "podman" and shutil.which("podman") is None:
        pytest.skip("needs podman (scripts/test installs it)")
    # A registries.conf that does not say the loopback registry is plain http.
    conf = tmp_path / "registries.conf"
    conf.write_text("unqualified-search-registries = []\n")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    root = tmp_path / kind
    root.mkdir()
    backend = "runtime" if tool == "podman" else "builtin"
    done = cli("pull", seeded.direct_ref, "--to", f"{kind}:{root}", "--backend", backend)
    assert done.returncode == 1
    reason = _failed_line(done.stdout)
    address = seeded.registry.address
    assert reason.startswith(f"{tool}: {address} answers in plain http, not https"), reason
    assert "(http: server gave HTTP response to HTTPS client)" in reason
    assert reason.endswith(
        f"set insecure = true in its [[registry]] in registries.conf ({conf})"
    ), reason
