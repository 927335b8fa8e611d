"""Shell completion, for real: the script `imgcache completion SHELL` prints, loaded into
bash (and fish and zsh), asked what a TAB would offer, with the installed `imgcache`
answering on a cache of images made by mksquashfs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imgcache.tui.cli_completion import MAX_ENTRIES, cached_refs
from tests.builders import have, make_rootfs, make_squashfs

pytestmark = pytest.mark.tools

BIN = Path(sys.executable).parent
IMGCACHE = str(BIN / "imgcache")

#: bash: load the script, then complete the line in $1 as readline would at its end.
BASH = r"""
source <("$IMGCACHE" completion bash)
complete -p imgcache
COMP_LINE=$1
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<<"$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_TYPE=9
_python_argcomplete imgcache
printf '%s\n' "${COMPREPLY[@]}"
"""


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict[str, Path]:
    """A singularity and an enroot cache of real squashfs images, plus what must not show."""
    if not have("bash", "mksquashfs"):
        pytest.skip("needs bash and mksquashfs")
    base = tmp_path_factory.mktemp("completion")
    image = make_squashfs(base / "image.sqsh", rootfs=make_rootfs(base / "rootfs"))
    sif, enroot = base / "sif", base / "enroot"
    (sif / "nvcr.io" / "nvidia").mkdir(parents=True)
    shutil.copyfile(image, sif / "nvcr.io" / "nvidia" / "pytorch:25.09-py3.sif")
    shutil.copyfile(image, sif / "ubuntu:22.04")
    enroot.mkdir()
    shutil.copyfile(image, enroot / "nvidia+pytorch+25.09-py3.sqsh")
    shutil.copyfile(image, enroot / "alpine+3.19.sqsh")
    # Not to be offered: imgcache's own trash and temps, another tool's partial
    # download, a link to elsewhere (never followed), a FIFO (never opened).
    (sif / ".imgcache-trash" / "20250101T000000Z-1").mkdir(parents=True)
    shutil.copyfile(image, sif / ".imgcache-trash" / "20250101T000000Z-1" / "gone:1")
    shutil.copyfile(image, enroot / ".imgcache-busybox+1.sqsh.h-1-1.tmp")
    shutil.copyfile(image, enroot / "partial+1.sqsh.part")
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(image, elsewhere / "secret:1")
    (sif / "linked").symlink_to(elsewhere)
    os.mkfifo(enroot / "fifo+1.sqsh")
    # Names with control characters: never sent to the terminal, whatever the shell.
    shutil.copyfile(image, enroot / "evil\x1b]0;title\x07+1.sqsh")
    (base / "en\x1b[31mred").mkdir()
    return {"sif": sif, "enroot": enroot, "base": base}


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "IMGCACHE": IMGCACHE, "HOME": str(home)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def bash_complete(line: str, home: Path) -> tuple[list[str], str]:
    """What bash offers for `line`, and the `complete -p` line the script registered."""
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", BASH, "bash", line],
        capture_output=True, text=True, env=_env(home), timeout=60, check=True,
    )  # fmt: skip
    registered, *offered = done.stdout.splitlines()
    return [o.strip() for o in offered if o.strip()], registered


def caches_args(caches: dict[str, Path]) -> str:
    return f"--cache singularity:{caches['sif']} --cache enroot:{caches['enroot']}"


def test_bash_registers_the_completion_function(tmp_path):
    _, registered = bash_complete("imgcache ", tmp_path)
    assert registered.startswith("complete ") and registered.endswith(" imgcache")
    assert "-F _python_argcomplete" in registered


def test_bash_completes_commands_and_options(tmp_path):
    commands, _ = bash_complete("imgcache ", tmp_path)
    assert {"list", "defaults", "pull", "rm", "gc", "trash", "config", "completion"} <= set(
        commands
    )
    assert not any(c.startswith("-") for c in commands)  # options once a `-` is typed
    assert bash_complete("imgcache l", tmp_path)[0] == ["list"]
    assert bash_complete("imgcache list --so", tmp_path)[0] == ["--sort"]
    options, _ = bash_complete("imgcache gc --", tmp_path)
    assert {"--dry-run", "--days", "--finding", "--cache", "--read-only"} <= set(options)
    assert bash_complete("imgcache list --sort ", tmp_path)[0] == ["path", "ref", "size", "age"]
    assert bash_complete("imgcache gc --finding sup", tmp_path)[0] == ["superseded"]
    assert bash_complete("imgcache completion ", tmp_path)[0] == ["bash", "zsh", "fish"]


def test_bash_completes_cache_kinds(tmp_path, caches):
    kinds = ["singularity", "apptainer", "enroot", "podman"]
    assert bash_complete("imgcache pull --to ", tmp_path)[0] == kinds
    assert bash_complete("imgcache pull --to en", tmp_path)[0] == ["enroot"]
    assert bash_complete("imgcache --cache ", tmp_path)[0] == [f"{k}:" for k in kinds]
    # After KIND:, directories (bash, splitting the word at `:`, is given the path part).
    offered, _ = bash_complete(f"imgcache list --cache enroot:{caches['base']}/en", tmp_path)
    assert offered == [f"{caches['base']}/enroot/"]


def test_bash_completes_references_from_the_caches_file_names(tmp_path, caches):
    line = f"imgcache rm {caches_args(caches)} "
    offered, _ = bash_complete(line, tmp_path)
    assert offered == [
        "alpine:3.19",
        "nvcr.io/nvidia/pytorch:25.09-py3",
        "nvidia/pytorch:25.09-py3",
        "ubuntu:22.04",
    ]
    assert bash_complete(line + "nvcr", tmp_path)[0] == ["nvcr.io/nvidia/pytorch:25.09-py3"]
    assert bash_complete(f"imgcache compress {caches_args(caches)} alp", tmp_path)[0] == [
        "alpine:3.19"
    ]
    # From the config file too, as the command reads it.
    config = tmp_path / "config.toml"
    config.write_text(f'[[cache]]\nkind = "enroot"\npath = "{caches["enroot"]}"\n')
    offered, _ = bash_complete(f"imgcache pull --config {config} nv", tmp_path)
    assert offered == ["nvidia/pytorch:25.09-py3"]


def test_a_completed_reference_is_one_the_command_takes(tmp_path, caches):
    [ref] = bash_complete(f"imgcache rm {caches_args(caches)} alp", tmp_path)[0]
    plan = subprocess.run(
        [IMGCACHE, "rm", ref, "--cache", f"enroot:{caches['enroot']}"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False,
    )  # fmt: skip
    # The plan names the file; without a terminal it stops before deleting anything.
    assert plan.returncode == 2 and "alpine+3.19.sqsh" in plan.stdout
    assert (caches["enroot"] / "alpine+3.19.sqsh").exists()


def test_the_completion_path_stays_light(tmp_path, caches):
    # One TAB, as the shell runs it; -X importtime lists every module it imports.
    out = tmp_path / "offered"
    line = f"imgcache rm {caches_args(caches)} "
    env = {**_env(tmp_path), "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash",
           "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n",
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "imgcache.tui.cli"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ubuntu:22.04" in out.read_text().split("\n")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not {m for m in imported if m.split(".")[0] in ("textual", "rich")}


def test_fish_completes_for_real(tmp_path, caches):
    if not have("fish"):
        pytest.skip("needs fish (scripts/test installs it)")
    # Installed as the README says for yourself: fish autoloads it on the first TAB.
    config = tmp_path / "config"
    script = config / "fish" / "completions" / "imgcache.fish"
    script.parent.mkdir(parents=True)
    script.write_text(subprocess.check_output([IMGCACHE, "completion", "fish"], text=True))
    assert subprocess.run(["fish", "--no-config", "-n", str(script)], check=False).returncode == 0
    asks = [
        "imgcache l",
        "imgcache pull --to en",
        f"imgcache rm {caches_args(caches)} ubu",
    ]
    env = {**_env(tmp_path), "XDG_CONFIG_HOME": str(config), "XDG_DATA_HOME": str(tmp_path)}
    done = subprocess.run(
        ["fish", "-c", "; ".join(f"complete -C '{a}'" for a in asks)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    offered = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert offered == ["list", "enroot", "ubuntu:22.04"]


def test_zsh_script_loads_and_completes(tmp_path, caches):
    if not have("zsh"):
        pytest.skip("needs zsh (scripts/test installs it)")
    script = tmp_path / "_imgcache"
    script.write_text(subprocess.check_output([IMGCACHE, "completion", "zsh"], text=True))
    assert subprocess.run(["zsh", "-n", str(script)], check=False).returncode == 0
    # Registered with compinit's compdef; then the function asked as the completion
    # system would, with _describe (compsys's lister) printing what it was given.
    program = f"""
        autoload -U compinit && compinit -u -d {tmp_path}/zcompdump
        source {script}
        print -r -- "registered ${{_comps[imgcache]}}"
        _describe() {{ print -rl -- "${{(@P)2}}" }}
        ask() {{ BUFFER=$1; CURSOR=${{#1}}; words=(${{(z)1}}); _python_argcomplete }}
        ask 'imgcache l'
        ask 'imgcache rm {caches_args(caches)} ubu'
    """
    done = subprocess.run(
        ["zsh", "-f", "-c", program],
        capture_output=True, text=True, env=_env(tmp_path), timeout=60, check=True,
    )  # fmt: skip
    registered, commands, ref = done.stdout.splitlines()
    assert registered == "registered _python_argcomplete"
    assert commands.startswith("list:")  # value:description, as _describe takes them
    assert ref == "ubuntu\\:22.04:"  # the colon of the value escaped, no description


def test_zsh_autoloads_the_script_from_fpath(tmp_path):
    if not have("zsh"):
        pytest.skip("needs zsh (scripts/test installs it)")
    functions = tmp_path / "functions"
    functions.mkdir()
    script = subprocess.check_output([IMGCACHE, "completion", "zsh"], text=True)
    (functions / "_imgcache").write_text(script)
    # As a site installs it: _imgcache in a directory of $fpath, found by compinit.
    program = f"""
        fpath=({functions} $fpath)
        autoload -U compinit && compinit -u -d {tmp_path}/zcompdump
        print -r -- "registered ${{_comps[imgcache]}}"
        _describe() {{ print -rl -- "${{(@P)2}}" }}
        BUFFER='imgcache comp'; CURSOR=${{#BUFFER}}; words=(imgcache comp)
        _imgcache
    """
    done = subprocess.run(
        ["zsh", "-f", "-c", program],
        capture_output=True, text=True, env=_env(tmp_path), timeout=60, check=True,
    )  # fmt: skip
    registered, *offered = done.stdout.splitlines()
    assert registered == "registered _imgcache"
    # value:description, as _describe takes them
    assert [line.split(":")[0] for line in offered] == ["compress", "completion"]


def test_a_tab_reads_a_bounded_number_of_names(tmp_path):
    cache = tmp_path / "enroot"
    cache.mkdir()
    for i in range(MAX_ENTRIES + 50):
        (cache / f"img{i}+1.sqsh").touch()
    assert len(cached_refs([("enroot", str(cache))])) == MAX_ENTRIES
    # And for a bounded time: a budget already spent gives what was read by then.
    assert cached_refs([("enroot", str(cache))], budget=0.0) == set()
