"""master.yaml's resource pools and the notes on what imgcache does not read.

Each test writes a real master.yaml and reads it as the command does (`load_settings`
with `--determined-config`); the shapes follow Determined's own parser: `image` is a
string or a map of `cpu`, `cuda` (`gpu` before 0.17.6), `rocm`; a pool's
`task_container_defaults` is laid over the cluster's field by field.
"""

from __future__ import annotations

from pathlib import Path

from imgcache.backends.config import Settings, load_settings
from imgcache.backends.inventory.defaults import pool_defaults, resolve_defaults

NGC = "determinedai/pytorch-ngc:0.35.1"
NEXT = "determinedai/pytorch-ngc:0.36.0"
NVCR = "nvcr.io/nvidia/pytorch:25.09-py3"


def master(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "master.yaml"
    path.write_text(text)
    return load_settings(determined_config=str(path))


TWO_POOLS = f"""
resource_manager:
  type: slurm
task_container_defaults:
  shm_size_bytes: 4294967296
  image: {NGC}
resource_pools:
  - pool_name: cpu-only
    description: nodes without GPUs
    task_container_defaults:
      environment_variables: [OMP_NUM_THREADS=4]
      force_pull_image: true
      pod_spec: {{apiVersion: v1, kind: Pod}}
      registry_auth: {{username: u, password: p, serveraddress: r}}
  - pool_name: a100
    task_container_defaults:
      image:
        cuda: {NEXT}
        cpu: {NGC}
"""


def test_two_pools_one_overriding_cuda(tmp_path):
    settings = master(tmp_path, TWO_POOLS)
    assert [(p.name, dict(p.images)) for p in settings.pools] == [
        ("cpu-only", {}),
        ("a100", {"cuda": NEXT, "cpu": NGC}),
    ]
    assert settings.pools[1].origin.endswith(
        "master.yaml resource_pools[1] (pool a100) task_container_defaults.image"
    )
    # Keys that name no image change no default: nothing to say about them.
    assert settings.notes == ()
    _, defaults = resolve_defaults(settings, pools=True)
    # The pool's cpu entry is the cluster's own image: only its cuda is a default of its own.
    assert [(d.pool, d.env, d.value) for d in defaults] == [
        (None, "cpu", NGC),
        (None, "cuda", NGC),
        (None, "rocm", NGC),
        ("a100", "cuda", NEXT),
    ]
    assert defaults[-1].label == "pool a100 cuda default"
    # Without `pools`, as `pull --cuda` and `config --show` ask: the cluster's alone.
    assert len(resolve_defaults(settings)[1]) == 3


def test_a_pool_inherits_what_it_does_not_set(tmp_path):
    settings = master(tmp_path, TWO_POOLS)
    a100 = pool_defaults(settings, "a100")
    assert a100 is not None
    assert [(d.env, d.value, d.pool) for d in a100] == [
        ("cpu", NGC, None),
        ("cuda", NEXT, "a100"),
        ("rocm", NGC, None),
    ]
    assert [d.value for d in pool_defaults(settings, "cpu-only") or ()] == [NGC] * 3
    assert pool_defaults(settings, "nope") is None


def test_imgcache_config_outranks_the_cluster_image_but_not_a_pools(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[defaults]\ncuda = "{NVCR}"\n')
    path = tmp_path / "master.yaml"
    path.write_text(TWO_POOLS)
    settings = load_settings(config=str(config), determined_config=str(path))
    _, defaults = resolve_defaults(settings, pools=True)
    assert [(d.pool, d.value) for d in defaults if d.env == "cuda"] == [
        (None, NVCR),
        ("a100", NEXT),
    ]


def test_gpu_is_read_only_when_cuda_says_nothing(tmp_path):
    settings = master(
        tmp_path,
        f"task_container_defaults:\n  image:\n    cuda: {NVCR}\n    gpu: {NEXT}\n"
        f"resource_pools:\n  - pool_name: old\n    task_container_defaults:\n"
        f"      image:\n        gpu: {NEXT}\n        cuda: ''\n",
    )
    assert settings.default_images == {"cuda": NVCR}
    assert dict(settings.pools[0].images) == {"cuda": NEXT}
    assert settings.notes == ()


def test_unreadable_image_entries_are_noted_not_dropped_silently(tmp_path):
    settings = master(
        tmp_path,
        f"""
task_container_defaults:
  image:
    cpu: {NGC}
    tpu: google/tpu-vm:1
resource_pools:
  - pool_name: a100
    task_container_defaults:
      image:
        cuda: [{NEXT}]
        rocm: {NGC}
  - pool_name: mi300
    task_container_defaults:
      image: 3
""",
    )
    where = str(tmp_path / "master.yaml")
    assert settings.notes == (
        f"{where}: task_container_defaults.image.tpu: not an environment imgcache knows "
        "(cpu, cuda, rocm); its image is not shown",
        f"{where}: resource_pools[0] (pool a100) task_container_defaults.image.cuda: a list, "
        "not an image reference; not read, so the defaults shown may not be the ones jobs get",
        f"{where}: resource_pools[1] (pool mi300) task_container_defaults.image: a number, "
        "neither a string nor a map; not read, so the defaults shown may not be the ones "
        "jobs get",
    )
    # What could be read still is.
    assert settings.default_images == {"cpu": NGC}
    assert [(p.name, dict(p.images)) for p in settings.pools] == [
        ("a100", {"rocm": NGC}),
        ("mi300", {}),
    ]


def test_a_cluster_image_of_no_readable_form_is_a_note_not_a_refusal(tmp_path):
    settings = master(tmp_path, "task_container_defaults:\n  image: true\n")
    assert settings.default_images == {}
    [note] = settings.notes
    assert note.endswith(
        "task_container_defaults.image: true or false, neither a string nor a map; "
        "not read, so the defaults shown may not be the ones jobs get"
    )
    settings = master(tmp_path, "task_container_defaults: [image]\n")
    [note] = settings.notes
    assert "task_container_defaults: a list, not a map" in note


def test_images_set_where_imgcache_does_not_look_are_noted(tmp_path):
    settings = master(
        tmp_path,
        f"""
resource_manager:
  type: slurm
  partition_overrides:
    mlde_cuda:
      slot_type: cuda
      task_container_defaults:
        image: {{cuda: {NEXT}}}
    mlde_cpu:
      task_container_defaults:
        slurm: {{sbatch_args: [--nodelist=node001]}}
additional_resource_managers:
  - resource_manager: {{type: kubernetes, cluster_name: east}}
    resource_pools:
      - pool_name: east-gpu
        task_container_defaults: {{image: {NVCR}}}
resource_pools:
  - description: no name
    task_container_defaults: {{image: {NEXT}}}
  - pool_name: named
  - pool_name: named
    task_container_defaults: {{image: {NEXT}}}
""",
    )
    notes = [note.split(": ", 1)[1] for note in settings.notes]
    assert notes == [
        "resource_pools[0]: no pool_name; its images are not shown",
        "resource_pools[2]: a pool_name used before; its images are not shown",
        "resource_manager.partition_overrides.mlde_cuda.task_container_defaults.image: "
        "per-partition images are not read; jobs on that partition may get another image "
        "than shown",
        "additional_resource_managers[0].resource_pools[0].task_container_defaults.image: "
        "pools of additional resource managers are not read; their images are not shown",
    ]
    assert [p.name for p in settings.pools] == ["named"]


def test_control_characters_in_keys_and_names_are_escaped(tmp_path):
    settings = master(
        tmp_path,
        'resource_pools:\n  - pool_name: "g\\x1bpu"\n    task_container_defaults:\n'
        '      image: {"t\\x1bpu": x}\n',
    )
    [note] = settings.notes
    assert "\x1b" not in note and "(pool g\\x1bpu)" in note and "image.t\\x1bpu:" in note
