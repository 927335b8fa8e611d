"""Settings from --cache, the TOML config and Determined's master.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgcache.backends.config import ConfigError, check_cache_paths, load_settings, parse_cache_arg
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


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[findings]\nstale_dayz = 3\n", r"findings\.stale_dayz: unknown setting"),
        ("[colour]\nx = 1\n", r"unknown section \[colour\]"),
        ('[findings]\nstale_days = "90"\n', "wrong type str"),
        ("[findings]\nstale_days = 0\n", "must be greater than 0"),
        ('[permissions]\nfile_mode = "rw-r--r--"\n', "not an octal mode"),
        ('[jobs]\nbackend = "docker"\n', "must be one of auto, runtime, builtin"),
        ('[[cache]]\nkind = "lxc"\npath = "/x"\n', "unknown cache kind 'lxc'"),
        ('[[cache]]\nkind = "enroot"\n', "needs kind"),
        ("not toml at all = = \n", "not valid TOML"),
    ],
)
def test_config_mistakes_name_file_and_setting(tmp_path, text, words):
    config = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError, match=words) as info:
        load_settings(config=str(config))
    assert str(config) in str(info.value)


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
