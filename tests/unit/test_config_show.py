"""`imgcache config --show`: the merged settings and where each value came from, run as
the installed command with a site file, a user file, master.yaml and `--cache`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

IMGCACHE = str(Path(sys.executable).parent / "imgcache")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def files(tmp_path):
    """A site file, an XDG system file, a user file and a master.yaml, with the environment
    that points imgcache at them."""
    etc = write(
        tmp_path / "etc/imgcache/config.toml",
        f'[[cache]]\nkind = "enroot"\npath = "{tmp_path}/enroot"\n'
        '[watch]\nrescan_interval = 600\n[defaults]\ncpu = "ubuntu:22.04"\n'
        '[permissions]\nfile_mode = "0640"\n[keys]\nrescan = "r,f5"\n',
    )
    xdg = write(tmp_path / "xdg/imgcache/config.toml", "[scan]\nworkers = 8\n")
    user = write(
        tmp_path / "home/imgcache/config.toml",
        "[watch]\npoll_interval = 2\n[jobs]\nsquash_options = \"-comp xz -b '256K'\"\n",
    )
    master = write(
        tmp_path / "master.yaml",
        f"resource_manager:\n  singularity_image_root: {tmp_path}/sif\n"
        "task_container_defaults:\n  image:\n    cpu: debian:12\n    rocm: rocm/pytorch:6\n",
    )
    env = {
        **os.environ,
        "IMGCACHE_SYSTEM_CONFIG": str(etc),
        "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
        "XDG_CONFIG_HOME": str(tmp_path / "home"),
        "IMGCACHE_DETERMINED_CONFIG": str(master),
    }
    del env["IMGCACHE_CONFIG"]
    return {"etc": etc, "xdg": xdg, "user": user, "master": master, "env": env, "tmp": tmp_path}


def show(files, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IMGCACHE, "config", "--show", *args],
        capture_output=True,
        text=True,
        env=files["env"],
        timeout=60,
    )


def test_json_names_the_source_of_every_value(files):
    tmp = files["tmp"]
    done = show(files, "--json", "--cache", f"podman:{tmp}/oci")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    etc, xdg, user, master = (str(files[k]) for k in ("etc", "xdg", "user", "master"))
    assert data["sources"] == [etc, xdg, user, master]
    assert data["cache"] == [
        {"kind": "enroot", "path": f"{tmp}/enroot", "origin": etc},
        {
            "kind": "singularity",
            "path": f"{tmp}/sif",
            "origin": f"{master} resource_manager.singularity_image_root",
        },
        {"kind": "podman", "path": f"{tmp}/oci", "origin": "--cache"},
    ]
    settings = data["settings"]
    assert settings["watch"]["poll_interval"] == {"value": 2.0, "origin": user}
    assert settings["watch"]["rescan_interval"] == {"value": 600.0, "origin": etc}
    assert settings["watch"]["polling"] == {"value": False, "origin": "default"}
    assert settings["scan"]["workers"] == {"value": 8, "origin": xdg}
    assert settings["permissions"]["file_mode"] == {"value": "0640", "origin": etc}
    assert settings["permissions"]["dir_mode"] == {"value": "0755", "origin": "default"}
    assert settings["jobs"]["squash_options"] == {"value": "-comp xz -b 256K", "origin": user}
    # The config's cpu outranks master.yaml's; rocm comes from master.yaml; cuda from the
    # profile, which nobody chose (the newest).
    defaults = settings["defaults"]
    assert defaults["cpu"] == {"value": "ubuntu:22.04", "origin": etc}
    assert defaults["rocm"] == {
        "value": "rocm/pytorch:6",
        "origin": f"{master} task_container_defaults.image",
    }
    assert defaults["profile"] == {"value": "pytorch-ngc-0.35.1", "origin": "default"}
    assert defaults["cuda"]["origin"] == "profile pytorch-ngc-0.35.1"
    assert data["keys"] == {"rescan": {"value": "r,f5", "origin": etc}}


def test_text_is_toml_with_the_source_of_each_line(files):
    done = show(files)
    assert done.returncode == 0, done.stderr
    merged = tomllib.loads(done.stdout)  # what an admin could copy into a file
    assert merged["watch"] == {"poll_interval": 2.0, "rescan_interval": 600.0, "polling": False}
    assert merged["permissions"]["file_mode"] == "0640"
    assert [c["kind"] for c in merged["cache"]] == ["enroot", "singularity"]
    lines = done.stdout.splitlines()
    assert f"#   {files['etc']}" in lines
    line = next(x for x in lines if x.startswith("poll_interval = "))
    assert line.endswith(f"# {files['user']}")
    line = next(x for x in lines if x.startswith("stale_days = "))
    assert line.endswith("# default")
    line = next(x for x in lines if x.startswith("rocm = "))
    assert line.endswith(f"# {files['master']} task_container_defaults.image")


def test_config_option_replaces_the_site_and_user_files(files):
    own = write(files["tmp"] / "own.toml", "[scan]\nworkers = 2\n")
    done = show(files, "--json", "--config", str(own))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["sources"] == [str(own), str(files["master"])]
    assert data["settings"]["scan"]["workers"] == {"value": 2, "origin": str(own)}
    assert data["settings"]["watch"]["poll_interval"]["origin"] == "default"


def test_a_mistake_is_refused_like_everywhere_else(files):
    write(files["user"], "[watch]\npoll_interval = 0\n")
    done = show(files)
    assert done.returncode == 2
    assert done.stderr == (
        f"imgcache: {files['user']}: watch.poll_interval: 0 is out of range: "
        "a number of seconds from 0.5 to 3600\n"
    )
    assert done.stdout == ""
