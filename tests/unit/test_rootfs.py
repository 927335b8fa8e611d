"""The runtimes' start-up files as imgcache writes them, run by the real shells.

Each script is run by dash, bash and busybox sh (those installed; scripts/test
installs all three), the shells a container's `/bin/sh` or login shell may be.
The expected results are what enroot's and Apptainer's own code gives: bash's
`${word@Q}` for enroot's quoting, Apptainer's runscript semantics as its
template defines them (arguments `eval`ed unless SINGULARITY_NO_EVAL is set).
tests/integration/test_runtime_fidelity.py runs the same files from pulled
images, inside the image, under squashfuse and chroot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from imgcache.backends.jobs import rootfs
from imgcache.backends.jobs.runtime import apptainer_scripts as scripts
from imgcache.backends.jobs.runtime import enroot_files, singularity_files
from imgcache.backends.tools import siftool

SHELLS = [
    pytest.param(
        argv, id=argv[0], marks=pytest.mark.skipif(not shutil.which(argv[0]), reason="not here")
    )
    for argv in (["dash"], ["bash"], ["busybox", "sh"])
]


def _run(shell: list[str], script: str, *args: str, env: dict | None = None, cwd=None):
    return subprocess.run(
        [*shell, "-c", script, "sh", *args],
        capture_output=True,
        env={"PATH": os.environ["PATH"], "HOME": "/h", **(env or {})},
        cwd=cwd,
        check=False,
    )


def _run_file(shell: list[str], path: Path, *args: str, env: dict | None = None):
    return subprocess.run(
        [*shell, str(path), *args],
        capture_output=True,
        env={"PATH": os.environ["PATH"], "HOME": "/h", **(env or {})},
        check=False,
    )


# --- enroot: /etc/rc --------------------------------------------------------------------


def _hostile_labels(marker: Path) -> dict[str, str]:
    """Labels whose text runs `touch MARKER-n` if any byte of it leaves its comment."""
    touch = f"touch {marker}"
    return {
        # NUL within the first 80 bytes: bash refuses such a script ("binary file").
        "a\0b": "x",
        f"key\n{touch}-key-lf": "v",
        "cr": f"v\r{touch}-cr",
        "value": f"line one\n{touch}-value-lf",
        "sub": f"$({touch}-sub) `{touch}-tick` ${{X:={touch}}}",
        "nul-value": f"a\0b\n{touch}-nul",
        f"$({touch}-key-sub)": "`{touch}-key-tick`",
    }


@pytest.mark.parametrize("shell", SHELLS)
def test_no_label_byte_leaves_its_comment_in_enroot_rc(shell, tmp_path) -> None:
    if os.path.exists("/etc/rc.local"):
        pytest.skip("/etc/rc would source this machine's /etc/rc.local")
    marker = tmp_path / "ran"
    rc = enroot_files.enroot_rc(
        {"Entrypoint": ["/bin/echo", "entrypoint"], "Labels": _hostile_labels(marker)}
    )
    assert "\0" not in rc and "\r" not in rc
    comments = rc.split("\n\n", 1)[0].split("\n")
    assert len(comments) == 7 and all(line.startswith("# ") for line in comments)
    path = tmp_path / "rc"
    path.write_text(rc)
    assert subprocess.run([*shell, "-n", str(path)], check=False).returncode == 0
    done = _run_file(shell, path, "arg")
    assert (done.returncode, done.stdout) == (0, b"entrypoint arg\n"), done.stderr
    done = _run_file(shell, path)
    assert (done.returncode, done.stdout) == (0, b"entrypoint\n"), done.stderr
    assert not list(tmp_path.glob("ran*")), "a label's text ran as a command"


def test_ordinary_labels_are_written_as_enroot_writes_them() -> None:
    rc = enroot_files.enroot_rc({"Labels": {"z.first": "one", "maintainer": "A <a@b> & c"}})
    # enroot 4.1.2: jq's "# \(.key) \(.value | gsub("\n"; " "))", in the image's order.
    assert rc.startswith("# z.first one\n# maintainer A <a@b> & c\n\nmkdir -p")


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_enroot_rc_quotes_words_as_bash_at_q_does() -> None:
    words = ["/bin/echo", "it's", "a b", "$HOME", "`x`", 'q"w', "back\\slash", "é", ""]
    at_q = subprocess.run(
        ["bash", "-c", 'printf "%s\\n" "${@@Q}"', "bash", *words],
        capture_output=True,
        text=True,
        check=True,
        env={"LC_ALL": "C.UTF-8"},
    ).stdout.splitlines()
    assert [enroot_files.quote_word(w) for w in words] == at_q
    rc = enroot_files.enroot_rc({"Entrypoint": words[:2], "Cmd": words[2:4]})
    # enroot's spacing too: `exec EP "$@"`, `exec EP CMD`; two spaces with no ENTRYPOINT.
    assert "    exec '/bin/echo' 'it'\\''s' \"$@\"\n" in rc
    assert "    exec '/bin/echo' 'it'\\''s' 'a b' '$HOME'\n" in rc
    assert "    exec  '/bin/sh'\n" in enroot_files.enroot_rc({})
    assert '    exec  "$@"\n' in enroot_files.enroot_rc({})
    assert "    exec '/e' \n" in enroot_files.enroot_rc({"Entrypoint": ["/e"]})


@pytest.mark.parametrize("shell", SHELLS)
def test_enroot_rc_runs_the_entrypoint_in_the_working_dir(shell, tmp_path) -> None:
    if os.path.exists("/etc/rc.local"):
        pytest.skip("/etc/rc would source this machine's /etc/rc.local")
    work = tmp_path / 'w $x"y'
    rc = enroot_files.enroot_rc(
        {"Entrypoint": ["/bin/sh", "-c", 'echo "$PWD|$*"', "E"], "Cmd": ["C", "it's"]}
        | {"WorkingDir": str(work)}
    )
    assert _run(shell, rc, "$HOME", "a b").stdout.decode() == f"{work}|$HOME a b\n"
    assert _run(shell, rc).stdout.decode() == f"{work}|C it's\n"


def test_volumes_with_line_breaks_stay_out_of_fstab() -> None:
    notes: list[str] = []
    config = {"Volumes": {"/data": {}, "/x /etc none bind\n/etc/shadow": {}, "/a b": {}}}
    assert enroot_files.enroot_fstab(config, notes.append) == (
        "${ENROOT_ROOTFS}/a b /a b none x-create=dir,bind,rw,nosuid,nodev\n"
        "${ENROOT_ROOTFS}/data /data none x-create=dir,bind,rw,nosuid,nodev\n"
    )
    assert len(notes) == 1 and "line break" in notes[0]


# --- Apptainer: the runscript --------------------------------------------------------

EP = ["/usr/bin/printf", "[%s]"]
CMD = ["default arg"]
# (argument, Apptainer's default semantics, with SINGULARITY_NO_EVAL=1); HOME=/h.
RUNSCRIPT_CASES = [
    (None, "[default arg]", "[default arg]"),
    ("$HOME", "[/h]", "[$HOME]"),
    ('a "b" c', "[a b c]", '[a "b" c]'),
    ("$(echo hi)", "[hi]", "[$(echo hi)]"),
    ("`echo tick`", "[tick]", "[`echo tick`]"),
    ("it's", "[it's]", "[it's]"),
    ("a b", "[a b]", "[a b]"),
]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("arg", "default", "no_eval"), RUNSCRIPT_CASES)
def test_the_runscript_has_apptainers_semantics(shell, arg, default, no_eval, tmp_path) -> None:
    path = tmp_path / "runscript"
    path.write_text(scripts.oci_runscript(EP, CMD))
    args = [] if arg is None else [arg]
    assert _run_file(shell, path, *args).stdout.decode() == default
    evaluated = _run_file(shell, path, *args, env={"SINGULARITY_NO_EVAL": "1"})
    assert evaluated.stdout.decode() == no_eval
    # Only SINGULARITY_NO_EVAL selects the branch (Apptainer sets both names).
    assert _run_file(shell, path, *args, env={"APPTAINER_NO_EVAL": "1"}).stdout.decode() == default


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "args", "out"),
    [
        ([], ["/usr/bin/printf", "<%s>", "x y"], [], "<x y>"),
        ([], ["/usr/bin/printf", "<%s>"], ["/usr/bin/printf", "(%s)", "z"], "(z)"),
        (["/usr/bin/printf", "<%s>"], [], ["one", "two"], "<one><two>"),
        (["/usr/bin/printf", "<%s>", "$HOME"], ["it's"], [], "<$HOME><it's>"),
    ],
)
def test_entrypoint_and_cmd_words_are_never_expanded(entrypoint, cmd, args, out, tmp_path) -> None:
    path = tmp_path / "runscript"
    path.write_text(scripts.oci_runscript(entrypoint, cmd))
    for env in ({}, {"SINGULARITY_NO_EVAL": "1"}):
        assert _run_file(["sh"], path, *args, env=env).stdout.decode() == out


def test_the_runscript_is_apptainers_template_rendered() -> None:
    text = scripts.oci_runscript(["/bin/sh", "-c", "echo hi"], ["a b"])
    assert text.startswith(
        "#!/bin/sh\n"
        'OCI_ENTRYPOINT=\'"/bin/sh" "-c" "echo hi"\'\n'
        "OCI_CMD='\"a b\"'\n"
        "\n# When SINGULARITY_NO_EVAL set,"
    )
    # Apptainer interprets a runscript in-process (no /bin/sh needed) when it has this line.
    assert '\neval "set ${SINGULARITY_OCI_RUN}"\nexec "$@"\n' in text
    assert "\n\telse\n        set -- 'a b' \"$@\"\n" in text  # the template's tab, kept
    assert "{{" not in text and "}}" not in text
    assert scripts.oci_runscript([], []).startswith("#!/bin/sh\nOCI_ENTRYPOINT=''\nOCI_CMD=''\n")


def test_the_template_engine_does_what_go_does() -> None:
    tmpl = "a\n    {{- if .X }}\nX={{ .X }}{{- else if .Y }} Y{{ else }} none{{- end }}\nz"
    assert scripts.render_template(tmpl, {"X": "1", "Y": ""}) == "a\nX=1\nz"
    assert scripts.render_template(tmpl, {"X": "", "Y": "1"}) == "a Y\nz"
    assert scripts.render_template(tmpl, {"X": "", "Y": ""}) == "a none\nz"
    with pytest.raises(ValueError, match="not supported"):
        scripts.render_template("{{ range .X }}", {"X": "1"})


# --- Apptainer: the environment ------------------------------------------------------

HOSTILE_VALUES = ["x}y", "a'b", 'q"w', "$HOME", "`id`", "back\\slash", "two\nlines", "${X:-d}"]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_env_script_keeps_every_value_and_skips_bad_names(shell) -> None:
    env = [f"V{i}={v}" for i, v in enumerate(HOSTILE_VALUES)]
    env += ["PATH=/opt/x:/bin", "1BAD=x", "é=1", "A-B=1", "EMPTY"]
    text, skipped = scripts.docker_env_script(env)
    assert skipped == ["1BAD", "é", "A-B"]
    shown = " ".join(f'"$V{i}"' for i in range(len(HOSTILE_VALUES)))
    done = _run(shell, text + f'printf "[%s]" {shown} "$PATH" "${{EMPTY-unset}}"')
    assert done.returncode == 0, done.stderr
    expected = [*HOSTILE_VALUES, "/opt/x:/bin", ""]
    assert done.stdout.decode() == "".join(f"[{v}]" for v in expected)
    # A value set when the container starts wins; PATH is set outright.
    preset = _run(shell, text + 'printf "[%s]" "$V0" "$PATH"', env={"V0": "mine"})
    assert preset.stdout.decode() == "[mine][/opt/x:/bin]"


def test_the_env_script_is_written_as_apptainer_1_5_writes_it() -> None:
    text, _ = scripts.docker_env_script(["PATH=/a:$B", 'A=x "y"', "E"])
    assert text == (
        '#!/bin/sh\nexport PATH="/a:\\$B"\nexport A="${A:-"x \\"y\\""}"\nexport E="${E:-}"\n'
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_ps1_is_left_alone_when_the_image_sets_it(shell) -> None:
    # The env scripts run in order: the image's Env (10-...) before 99-base.sh.
    image_env, _ = scripts.docker_env_script(["PS1=image> "])
    base = scripts.script("99-base.sh")
    # (Shells give PS1 defaults of their own; the container starts without one.)
    done = _run(shell, "unset PS1\n" + image_env + base + 'echo "$PS1"')
    assert done.stdout == b"image> \n"
    assert _run(shell, "unset PS1\n" + base + 'echo "$PS1"').stdout == b"Apptainer> \n"


def test_apptainers_own_scripts_are_shipped_whole() -> None:
    shell = scripts.script("shell.sh")
    assert 'if test -n "$SINGULARITY_SHELL" -a -x "$SINGULARITY_SHELL"; then' in shell
    assert 'PS1="Apptainer $APPTAINER_NAME:\\\\w> "' in shell
    assert "SINGULARITY_APPNAME" in scripts.script("95-apps.sh")
    for name in [*scripts.ACTIONS.values(), *scripts.ENV_SCRIPTS, "startscript.sh"]:
        assert "Apptainer a Series of LF Projects LLC" in scripts.script(name)


# --- Apptainer: labels, JSON, the whole /.singularity.d ----------------------------


def test_build_labels_are_apptainers() -> None:
    when = datetime(2026, 12, 7, 2, 16, 16, tzinfo=UTC)
    labels = singularity_files.build_labels(
        {"org.opencontainers.image.created": "old", "team": "hpc"},
        "docker.io/x/y:1",
        "d",
        "amd64",
        when,
    )
    assert labels["org.opencontainers.image.created"] == "2026-12-07T02:16:16Z"
    assert labels["org.label-schema.build-date"] == "Monday_7_December_2026_2:16:16_UTC"
    assert labels["team"] == "hpc"
    assert "org.label-schema.usage.apptainer.version" not in labels
    east = when.astimezone(timezone(timedelta(hours=1), "CET"))
    assert singularity_files.rfc3339(east) == "2026-12-07T03:16:16+01:00"
    assert re.fullmatch(
        r"Monday_7_December_2026_3:16:16_CET", singularity_files.label_schema_date(east)
    )


def test_source_date_epoch_fixes_the_build_time() -> None:
    when = singularity_files.build_time({"SOURCE_DATE_EPOCH": "1700000000"})
    assert when.timestamp() == 1700000000
    assert (
        abs(
            singularity_files.build_time({"SOURCE_DATE_EPOCH": "x"}).timestamp()
            - datetime.now().timestamp()
        )
        < 60
    )


def test_json_is_written_as_go_writes_it() -> None:
    value = {"b": "NVIDIA <x@y> & \u2028é", "a": ["1"]}
    assert singularity_files.go_json(value, sort_keys=True) == (
        '{"a":["1"],"b":"NVIDIA \\u003cx@y\\u003e \\u0026 \\u2028é"}'
    )
    assert singularity_files.go_json({"k": "v"}, indent="\t") == '{\n\t"k": "v"\n}'


def test_the_whole_singularity_d(tmp_path) -> None:
    notes: list[str] = []
    config = {
        "Env": ["PATH=/bin", "PS1=image> ", "1BAD=x"],
        "Entrypoint": ["/bin/echo"],
        "Labels": {"maintainer": "A <a@b>", "lone": "\udc80"},
    }
    meta = singularity_files.write_singularity(
        str(tmp_path),
        config,
        ref="docker.io/x/y:1",
        digest="sha256:ab",
        arch="amd64",
        note=notes.append,
    )
    sd = tmp_path / ".singularity.d"
    assert notes == ["environment left out of 10-docker2singularity.sh, not shell names: '1BAD'"]
    assert sorted(p.name for p in (sd / "env").iterdir()) == [
        "01-base.sh",
        "10-docker2singularity.sh",
        "90-environment.sh",
        "95-apps.sh",
        "99-base.sh",
        "99-runtimevars.sh",
    ]
    for rel in ("actions/run", "env/95-apps.sh", "runscript", "startscript"):
        assert stat.S_IMODE((sd / rel).stat().st_mode) == 0o755
    assert (sd / "actions" / "shell").read_text() == scripts.script("shell.sh")
    assert (sd / "Singularity").read_text() == "bootstrap: docker\nfrom: docker.io/x/y:1\n\n"
    assert meta.deffile == b"bootstrap: docker\nfrom: docker.io/x/y:1\n\n"
    labels_text = (sd / "labels.json").read_text()
    assert not labels_text.endswith("\n") and "\\u003ca@b\\u003e" in labels_text
    assert json.loads(labels_text)["lone"] == "\ufffd"
    inspect = meta.json_objects["inspect-metadata.json"].decode()
    assert inspect.startswith(
        '{"data":{"attributes":{"environment":{"/.singularity.d/env/10-docker'
    )
    attributes = json.loads(inspect)["data"]["attributes"]
    assert list(attributes) == ["environment", "labels", "runscript", "deffile", "startscript"]
    assert list(attributes["environment"]) == [
        "/.singularity.d/env/10-docker2singularity.sh",
        "/.singularity.d/env/90-environment.sh",
    ]
    assert attributes["deffile"] == "bootstrap: docker\nfrom: docker.io/x/y:1"
    assert attributes["runscript"] == (sd / "runscript").read_text().rstrip("\n")
    assert json.loads(meta.json_objects["oci-config.json"])["Env"][0] == "PATH=/bin"


def test_fix_permissions_reaches_as_deep_as_enroot(tmp_path) -> None:
    root = tmp_path / "rootfs"
    deep = root.joinpath(*[f"d{i}" for i in range(1, 16)])
    deep.mkdir(parents=True)
    (deep.parent / "secret").write_text("x")
    (deep.parent / "secret").chmod(0)
    for level in [deep, *deep.parents][:16]:
        level.chmod(0o555)
    rootfs.fix_permissions(str(root))
    assert stat.S_IMODE(root.stat().st_mode) & 0o700 == 0o700
    assert stat.S_IMODE(root.joinpath(*[f"d{i}" for i in range(1, 15)]).stat().st_mode) == 0o755
    assert stat.S_IMODE(deep.stat().st_mode) == 0o555  # depth 15: read and search only
    assert stat.S_IMODE((deep.parent / "secret").stat().st_mode) == 0o400


# --- the SIF header ----------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("siftool"), reason="needs siftool (scripts/test installs it)")
def test_the_launch_line_goes_into_a_new_sif_only(tmp_path) -> None:
    sif = tmp_path / "x.sif"
    subprocess.run(siftool.new_argv(str(sif)), check=True, capture_output=True)
    siftool.write_launch_script(str(sif))
    header = subprocess.run(["siftool", "header", str(sif)], capture_output=True, text=True).stdout
    assert re.search(r"^Launch Script: +#!/usr/bin/env run-singularity$", header, re.M)
    assert sif.read_bytes()[:32] == b"#!/usr/bin/env run-singularity\n\0"
    link = tmp_path / "link.sif"
    link.symlink_to(sif)
    with pytest.raises(OSError):
        siftool.write_launch_script(str(link))
    other = tmp_path / "not.sif"
    other.write_bytes(b"\0" * 4096)
    with pytest.raises(OSError, match="not a SIF"):
        siftool.write_launch_script(str(other))
    assert other.read_bytes() == b"\0" * 4096
