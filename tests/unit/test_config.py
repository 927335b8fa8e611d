"""Settings from --cache, the TOML config and Determined's master.yaml."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imgcache.backends.config import (
    ConfigError,
    check_cache_paths,
    load_settings,
    parse_cache_arg,
    site_config_paths,
)
from imgcache.backends.inventory.model import CacheKind


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_cache_argument_kinds_and_alias(tmp_path):
    spec = parse_cache_arg(f"apptainer:{tmp_path}")
    assert spec.kind is CacheKind.SINGULARITY
    assert spec.path == str(tmp_path)
    assert parse_cache_arg("enroot:/shared/enroot").kind is CacheKind.ENROOT
    assert parse_cache_arg("PODMAN:/shared/oci").kind is CacheKind.PODMAN


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("/shared/sif", "expected KIND:PATH"),
        ("docker:/shared", "unknown cache kind 'docker'"),
        ("enroot:", "expected KIND:PATH"),
    ],
)
def test_cache_argument_refusals(text, words):
    with pytest.raises(ConfigError, match=words):
        parse_cache_arg(text)


def test_relative_cache_path_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_cache_arg("enroot:cache").path == str(tmp_path / "cache")


def test_toml_config_caches_defaults_and_settings(tmp_path):
    config = write(
        tmp_path / "c.toml",
        f"""
[[cache]]
kind = "singularity"
path = "{tmp_path}/sif"

[[cache]]
kind = "enroot"
path = "{tmp_path}/enroot"

[defaults]
profile = "environments-69f397f"
cuda = "nvcr.io/nvidia/pytorch:25.09-py3"

[findings]
stale_days = 30

[permissions]
file_mode = "0640"

[jobs]
squash_options = "-comp xz -b 256K"

[keys]
rescan = "r,f5"
""",
    )
    settings = load_settings(config=str(config))
    assert [(c.kind, c.path) for c in settings.caches] == [
        (CacheKind.SINGULARITY, f"{tmp_path}/sif"),
        (CacheKind.ENROOT, f"{tmp_path}/enroot"),
    ]
    assert settings.profile == "environments-69f397f"
    assert settings.default_images == {"cuda": "nvcr.io/nvidia/pytorch:25.09-py3"}
    assert settings.stale_days == 30
    assert settings.file_mode == 0o640
    assert settings.squash_options == ("-comp", "xz", "-b", "256K")
    assert settings.keys == {"rescan": "r,f5"}
    assert settings.sources == (str(config),)


def test_explicit_config_that_does_not_exist(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(config=str(tmp_path / "nope.toml"))


def test_user_config_is_found_under_xdg_config_home(tmp_path, monkeypatch):
    monkeypatch.delenv("IMGCACHE_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    write(tmp_path / "imgcache" / "config.toml", '[defaults]\nprofile = "environments-096d730"\n')
    assert load_settings().profile == "environments-096d730"


def test_master_yaml_image_root_and_default_map(tmp_path):
    master = write(
        tmp_path / "master.yaml",
        f"""
resource_manager:
  type: slurm
  singularity_image_root: {tmp_path}/images
task_container_defaults:
  image:
    cpu: determinedai/environments:py-3.8-pytorch-1.10-tf-2.8-cpu-69f397f
    gpu: determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-69f397f
""",
    )
    settings = load_settings(determined_config=str(master))
    assert [(c.kind, c.path) for c in settings.caches] == [
        (CacheKind.SINGULARITY, f"{tmp_path}/images")
    ]
    # Older master.yaml files call the CUDA image "gpu".
    assert settings.default_images == {
        "cpu": "determinedai/environments:py-3.8-pytorch-1.10-tf-2.8-cpu-69f397f",
        "cuda": "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-69f397f",
    }
    assert "task_container_defaults.image" in settings.default_origins["cpu"]


def test_master_yaml_apptainer_root_and_single_image(tmp_path):
    master = write(
        tmp_path / "master.yaml",
        f"resource_manager:\n  apptainer_image_root: {tmp_path}/a\n"
        "task_container_defaults:\n  image: determinedai/pytorch-ngc:0.35.1\n",
    )
    settings = load_settings(determined_config=str(master))
    assert settings.caches[0].path == f"{tmp_path}/a"
    assert set(settings.default_images.values()) == {"determinedai/pytorch-ngc:0.35.1"}
    assert set(settings.default_images) == {"cpu", "cuda", "rocm"}


def test_imgcache_config_outranks_master_yaml(tmp_path):
    config = write(tmp_path / "c.toml", '[defaults]\ncpu = "ubuntu:22.04"\n')
    master = write(
        tmp_path / "master.yaml",
        "task_container_defaults:\n  image: determinedai/pytorch-ngc:0.35.1\n",
    )
    settings = load_settings(config=str(config), determined_config=str(master))
    assert settings.default_images["cpu"] == "ubuntu:22.04"
    assert settings.default_images["cuda"] == "determinedai/pytorch-ngc:0.35.1"


def test_master_yaml_broken(tmp_path):
    master = write(tmp_path / "master.yaml", "resource_manager: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(determined_config=str(master))


def test_master_yaml_from_environment(tmp_path, monkeypatch):
    master = write(
        tmp_path / "m.yaml", f"resource_manager:\n  singularity_image_root: {tmp_path}\n"
    )
    monkeypatch.setenv("IMGCACHE_DETERMINED_CONFIG", str(master))
    assert load_settings().caches[0].path == str(tmp_path)


def test_caches_from_all_sources_are_merged_once(tmp_path):
    config = write(
        tmp_path / "c.toml", f'[[cache]]\nkind = "apptainer"\npath = "{tmp_path}/sif/"\n'
    )
    settings = load_settings(
        config=str(config),
        cache_args=[f"singularity:{tmp_path}/sif", f"enroot:{tmp_path}/enroot"],
    )
    assert [c.label for c in settings.caches] == [
        f"singularity:{tmp_path}/sif",
        f"enroot:{tmp_path}/enroot",
    ]


def test_unusable_cache_roots_are_explained(tmp_path):
    afile = write(tmp_path / "file", "x")
    problems = check_cache_paths(
        [parse_cache_arg(f"enroot:{tmp_path}/missing"), parse_cache_arg(f"podman:{afile}")]
    )
    assert problems[0].startswith(f"enroot:{tmp_path}/missing: no such directory")
    assert "create it or fix the path" in problems[0]
    assert "not a directory" in problems[1]


def test_values_at_the_ends_of_their_ranges_are_accepted(tmp_path):
    config = write(
        tmp_path / "c.toml",
        "[watch]\npoll_interval = 0.5\nrescan_interval = 5\n"
        "[scan]\nworkers = 64\n[jobs]\nconcurrency = 1\n[findings]\nstale_days = 36500\n"
        '[delete]\ntrash_grace_days = 1\nallowed_owners = ["alice", "svc-images"]\n'
        '[permissions]\nfile_mode = "0400"\ndir_mode = "0o700"\n'
        '[defaults]\ncpu = "/shared/cpu.sif"\ncuda = "oci-archive:/shared/cuda.tar"\n',
    )
    settings = load_settings(config=str(config))
    assert (settings.poll_interval, settings.rescan_interval) == (0.5, 5.0)
    assert (settings.scan_workers, settings.job_concurrency, settings.stale_days) == (64, 1, 36500)
    assert settings.trash_grace_days == 1
    assert settings.allowed_owners == ("alice", "svc-images")
    assert (settings.file_mode, settings.dir_mode) == (0o400, 0o700)
    assert settings.default_images["cuda"] == "oci-archive:/shared/cuda.tar"


# -- site-wide configuration ------------------------------------------------------------


@pytest.fixture
def site(tmp_path, monkeypatch):
    """The site file, two XDG system directories and the user's directory, all in tmp_path;
    returns the path of each config file (which the test writes)."""
    monkeypatch.delenv("IMGCACHE_CONFIG")
    paths = {
        "etc": tmp_path / "etc" / "imgcache" / "config.toml",
        "xdg1": tmp_path / "xdg1" / "imgcache" / "config.toml",
        "xdg2": tmp_path / "xdg2" / "imgcache" / "config.toml",
        "user": tmp_path / "home" / "imgcache" / "config.toml",
    }
    monkeypatch.setenv("IMGCACHE_SYSTEM_CONFIG", str(paths["etc"]))
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path / 'xdg1'}:{tmp_path / 'xdg2'}")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    return paths


def write_site(site, tmp_path):
    write(
        site["etc"],
        f'[[cache]]\nkind = "singularity"\npath = "{tmp_path}/sif"\n'
        "[watch]\npoll_interval = 10\nrescan_interval = 600\n[jobs]\nconcurrency = 4\n"
        '[defaults]\nprofile = "environments-69f397f"\ncpu = "ubuntu:22.04"\n'
        '[keys]\nrescan = "r,f5"\nhelp = "question_mark,f1"\n',
    )
    write(site["xdg2"], "[watch]\npoll_interval = 20\n[scan]\nworkers = 8\n")
    write(site["xdg1"], "[scan]\nworkers = 16\n")
    write(
        site["user"],
        f'[[cache]]\nkind = "enroot"\npath = "{tmp_path}/enroot"\n'
        '[watch]\npoll_interval = 2\n[keys]\nrescan = "f5"\n'
        '[defaults]\ncuda = "nvcr.io/nvidia/pytorch:25.09-py3"\n',
    )


def test_site_xdg_and_user_files_merge_key_by_key(site, tmp_path):
    write_site(site, tmp_path)
    settings = load_settings()
    etc, xdg1, xdg2, user = (str(site[k]) for k in ("etc", "xdg1", "xdg2", "user"))
    # Lowest first: the site file, then XDG_CONFIG_DIRS from its last entry, then the user's.
    assert settings.sources == (etc, xdg2, xdg1, user)
    assert settings.poll_interval == 2.0 and settings.origins["watch.poll_interval"] == user
    assert settings.rescan_interval == 600.0 and settings.origins["watch.rescan_interval"] == etc
    # The first directory of XDG_CONFIG_DIRS wins over the second.
    assert settings.scan_workers == 16 and settings.origins["scan.workers"] == xdg1
    assert settings.job_concurrency == 4 and settings.profile == "environments-69f397f"
    assert "stale_days" not in settings.origins  # not set anywhere: the default
    assert settings.keys == {"rescan": "f5", "help": "question_mark,f1"}
    assert settings.origins["keys.rescan"] == user and settings.origins["keys.help"] == etc
    assert settings.default_images == {
        "cpu": "ubuntu:22.04",
        "cuda": "nvcr.io/nvidia/pytorch:25.09-py3",
    }
    assert settings.default_origins == {"cpu": etc, "cuda": user}
    # The [[cache]] lists add up.
    assert [(c.label, c.origin) for c in settings.caches] == [
        (f"singularity:{tmp_path}/sif", etc),
        (f"enroot:{tmp_path}/enroot", user),
    ]


def test_config_option_and_variable_are_read_alone(site, tmp_path, monkeypatch):
    write_site(site, tmp_path)
    own = write(tmp_path / "own.toml", "[scan]\nworkers = 3\n")
    settings = load_settings(config=str(own))
    assert settings.sources == (str(own),)
    assert settings.scan_workers == 3 and settings.poll_interval == 5.0
    assert settings.caches == () and settings.keys == {}
    monkeypatch.setenv("IMGCACHE_CONFIG", str(own))
    assert load_settings().sources == (str(own),)
    monkeypatch.setenv("IMGCACHE_CONFIG", "")
    assert load_settings().sources == ()


def test_site_file_override_and_switch_off(site, tmp_path, monkeypatch):
    write_site(site, tmp_path)
    monkeypatch.setenv("IMGCACHE_SYSTEM_CONFIG", "")
    settings = load_settings()
    assert str(site["etc"]) not in settings.sources
    assert settings.rescan_interval == 300.0


def test_a_file_named_twice_counts_where_it_ranks_highest(site, tmp_path, monkeypatch):
    write_site(site, tmp_path)
    # XDG_CONFIG_DIRS names the site file's directory again, above xdg1.
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path / 'etc'}:{tmp_path / 'xdg1'}")
    settings = load_settings()
    assert settings.sources == (str(site["xdg1"]), str(site["etc"]), str(site["user"]))


def test_a_mistake_in_the_site_file_is_named_even_when_the_user_overrides_it(site, tmp_path):
    write(site["etc"], "[watch]\npoll_interval = inf\n")
    write(site["user"], "[watch]\npoll_interval = 2\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(f"{site['etc']}: watch.poll_interval: inf is out of range")


def test_a_fifo_where_the_user_config_belongs_is_refused(site):
    site["user"].parent.mkdir(parents=True)
    os.mkfifo(site["user"])
    with pytest.raises(ConfigError, match="not a regular file"):
        load_settings()


def test_default_system_paths_follow_the_xdg_spec(monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_DIRS")
    monkeypatch.delenv("IMGCACHE_SYSTEM_CONFIG")
    assert site_config_paths() == [
        Path("/etc/imgcache/config.toml"),
        Path("/etc/xdg/imgcache/config.toml"),
    ]
    monkeypatch.setenv("XDG_CONFIG_DIRS", "/opt/a:relative/b:/opt/c")
    # Relative entries are ignored, as the spec says; the first entry ranks highest.
    assert site_config_paths()[1:] == [
        Path("/opt/c/imgcache/config.toml"),
        Path("/opt/a/imgcache/config.toml"),
    ]
