"""Hostile and mistaken config files, through the real command: each is refused with one
line that names the file and the key, and exit status 2, before the command does anything.

Before these checks, `rescan_interval = 1e-300` pinned a core, `poll_interval = inf`
killed the polling watcher, `file_mode = "4755"` would have published setuid images,
`trash_grace_days = -1` purged every trash batch at the next delete, and a non-UTF-8
file, a deeply nested array or an unbalanced quote in `squash_options` ended in
"unexpected error ... please report it" (the last one for every command, even `list`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imgcache.tui.cli import main

IMGCACHE = str(Path(sys.executable).parent / "imgcache")


def refused(capsys, argv: list[str]) -> str:
    """Run `imgcache ARGV` in-process; assert exit 2 and one line on stderr; return it."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("imgcache: ")
    assert "unexpected error" not in err and "Traceback" not in err
    return err.strip()


CASES = [
    # (file text, key named, words in the message)
    ("[watch]\nrescan_interval = 1e-300\n", "watch.rescan_interval", "1e-300 is out of range"),
    ("[watch]\nrescan_interval = 4.9\n", "watch.rescan_interval", "seconds from 5 to 86400"),
    ("[watch]\nrescan_interval = 86401\n", "watch.rescan_interval", "out of range"),
    ("[watch]\npoll_interval = inf\n", "watch.poll_interval", "inf is out of range"),
    ("[watch]\npoll_interval = 0.1\n", "watch.poll_interval", "seconds from 0.5 to 3600"),
    ("[watch]\npoll_interval = 3601\n", "watch.poll_interval", "3601 is out of range"),
    ("[findings]\nstale_days = 36501\n", "findings.stale_days", "36501 is out of range"),
    ("[delete]\ntrash_grace_days = 3651\n", "delete.trash_grace_days", "3651 is out of range"),
    ("[jobs]\nconcurrency = 65\n", "jobs.concurrency", "65 is out of range"),
    ("[scan]\nworkers = 2.0\n", "scan.workers", "not a float (write 2)"),
    ("[watch]\npoll_interval = nan\n", "watch.poll_interval", "nan is out of range"),
    ("[watch]\nrescan_interval = -nan\n", "watch.rescan_interval", "nan is out of range"),
    ("[findings]\nstale_days = nan\n", "findings.stale_days", "not a float"),
    ("[scan]\nworkers = inf\n", "scan.workers", "not a float"),
    ("[defaults]\ncpu = nan\n", "defaults.cpu", "not a float"),
    ("[ui]\nread_only = nan\n", "ui.read_only", "expected true or false"),
    ("[keys]\nrescan = nan\n", "keys.rescan", "not a float"),
    ('[watch]\npolling = "yes"\n', "watch.polling", "expected true or false, not a string"),
    ('[permissions]\nfile_mode = "4755"\n', "permissions.file_mode", "sets the setuid bit"),
    ('[permissions]\nfile_mode = "2644"\n', "permissions.file_mode", "setgid"),
    ('[permissions]\nfile_mode = "0044"\n', "permissions.file_mode", "lacks 0400"),
    ('[permissions]\nfile_mode = "0646"\n', "permissions.file_mode", "lets every user write"),
    ("[permissions]\nfile_mode = 644\n", "permissions.file_mode", "as a string"),
    ('[permissions]\nfile_mode = "rw-r--r--"\n', "permissions.file_mode", "not an octal mode"),
    ('[permissions]\ndir_mode = "0000"\n', "permissions.dir_mode", "lacks 0700"),
    ('[permissions]\ndir_mode = "1777"\n', "permissions.dir_mode", "sticky"),
    ("[delete]\ntrash_grace_days = -1\n", "delete.trash_grace_days", "-1 is out of range"),
    ("[delete]\ntrash_grace_days = 0\n", "delete.trash_grace_days", "from 1 to 3650 days"),
    ('[delete]\nallowed_owners = ["ok", "a b"]\n', "delete.allowed_owners", "not a user name"),
    ('[delete]\nallowed_owners = "root"\n', "delete.allowed_owners", "an array of user names"),
    ('[defaults]\ncpu = ""\n', "defaults.cpu", "empty"),
    ('[defaults]\nrocm = "   "\n', "defaults.rocm", "empty"),
    ('[defaults]\ncuda = "Not A Ref"\n', "defaults.cuda", "not an image reference"),
    ('[defaults]\ncpu = "oci-archive:relative.tar"\n', "defaults.cpu", "must be absolute"),
    ("[jobs]\nconcurrency = 0\n", "jobs.concurrency", "0 is out of range"),
    ("[jobs]\nconcurrency = 10000\n", "jobs.concurrency", "an integer from 1 to 64"),
    ("[jobs]\nconcurrency = true\n", "jobs.concurrency", "not a boolean"),
    ('[jobs]\nbackend = "docker"\n', "jobs.backend", "one of auto, runtime, builtin"),
    ("[scan]\nworkers = 0\n", "scan.workers", "0 is out of range"),
    ("[scan]\nworkers = 65\n", "scan.workers", "an integer from 1 to 64"),
    ("[findings]\nstale_days = 0\n", "findings.stale_days", "from 1 to 36500 days"),
    ('[findings]\nstale_days = "90"\n', "findings.stale_days", "not a string"),
    ("[findings]\nstale_days = 1979-05-27\n", "findings.stale_days", "not a date or time"),
    ("[scan]\nworkerz = 3\n", "scan.workerz", "unknown setting in [scan]; did you mean workers?"),
    ("[watch]\nrescan = 3\n", "watch.rescan", "did you mean rescan_interval?"),
    ("[wach]\npolling = true\n", "[wach]", "unknown section; did you mean watch?"),
    ("[colour]\nx = 1\n", "[colour]", "(known: cache, defaults, findings, scan, watch"),
    ("watch = 3\n", "watch", "expected a table [watch], not an integer"),
    ("[cache]\nkind = 'enroot'\n", "cache", "caches are written [[cache]]"),
    ('[[cache]]\nkind = "lxc"\npath = "/x"\n', "[[cache]] #1", "unknown cache kind 'lxc'"),
    ('[[cache]]\nkind = "enroot"\n', "[[cache]] #1", "path missing"),
    ('[[cache]]\nkind = "enroot"\npath = ""\n', "[[cache]] #1", "cache path is empty"),
    ('[[cache]]\nkind = "enroot"\npaht = "/x"\n', "[[cache]] #1", "'paht'; did you mean path?"),
    ('[jobs]\nsquash_options = "-comp \\"zstd"\n', "jobs.squash_options", "no closing quotation"),
    ('[defaults]\nprofile = "pytorch-ngc-0.35"\n', "defaults.profile", "did you mean pytorch-ngc"),
    ('[defaults]\nprofile = "zzz"\n', "defaults.profile", "unknown defaults profile 'zzz'"),
    ('[keys]\nrescan = ""\n', "keys.rescan", "empty"),
    ("[keys]\nrescan = 5\n", "keys.rescan", "not an integer"),
]


@pytest.mark.parametrize(("text", "key", "words"), CASES, ids=[c[1] + "=" + c[0] for c in CASES])
def test_each_bad_value_is_one_line_naming_file_and_key(tmp_path, capsys, text, key, words):
    config = tmp_path / "config.toml"
    config.write_text(text)
    line = refused(capsys, ["list", "--config", str(config)])
    assert line.startswith(f"imgcache: {config}: {key}"), line
    assert words in line


def test_unbalanced_quote_in_squash_options_no_longer_breaks_every_command(tmp_path):
    # The installed command, as an admin runs it; `list` used to say "unexpected error".
    config = tmp_path / "config.toml"
    config.write_text(f'[[cache]]\nkind = "enroot"\npath = "{tmp_path}"\n[jobs]\n')
    config.write_text(config.read_text() + 'squash_options = "-comp \'zstd"\n')
    for command in (["list"], ["defaults"], ["config", "--show"]):
        done = subprocess.run(
            [IMGCACHE, *command, "--config", str(config)], capture_output=True, text=True
        )
        assert done.returncode == 2
        assert done.stderr == (
            f'imgcache: {config}: jobs.squash_options: "-comp \'zstd" cannot be split into '
            "options: no closing quotation\n"
        )


def test_a_file_that_is_not_utf8_names_the_line(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_bytes(b'[defaults]\ncpu = "caf\xe9"\n')
    line = refused(capsys, ["list", "--config", str(config)])
    assert line == f"imgcache: {config}: not UTF-8 text (byte 0xe9 on line 2); TOML files are UTF-8"


@pytest.mark.parametrize("opening", ["[", "{a="])
def test_deeply_nested_arrays_and_tables(tmp_path, capsys, opening):
    config = tmp_path / "config.toml"
    closing = "]" if opening == "[" else "}"
    depth = 50_000
    config.write_text(f"x = {opening * depth}1{closing * depth}\n")
    line = refused(capsys, ["list", "--config", str(config)])
    assert line == f"imgcache: {config}: not valid TOML: arrays or tables nested too deeply"


def test_invalid_toml_says_where(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text("[findings\n")
    line = refused(capsys, ["list", "--config", str(config)])
    assert line.startswith(f"imgcache: {config}: not valid TOML: ")
    assert "line 1" in line


def test_master_yaml_error_is_one_line_with_line_and_column(tmp_path, capsys):
    master = tmp_path / "master.yaml"
    master.write_text("resource_manager:\n  singularity_image_root: [unclosed\n")
    line = refused(capsys, ["list", "--determined-config", str(master)])
    assert line.startswith(f"imgcache: {master}: not valid YAML: ")
    assert "(line 3, column 1)" in line


def test_master_yaml_tags_and_bytes_and_nesting(tmp_path, capsys):
    master = tmp_path / "master.yaml"
    master.write_text("a: !!python/object/apply:os.system [touch x]\n")
    line = refused(capsys, ["list", "--determined-config", str(master)])
    assert "not valid YAML: could not determine a constructor" in line
    master.write_bytes(b"task_container_defaults:\n  image: \xff\n")
    assert "not UTF-8 text (byte 0xff on line 2)" in refused(
        capsys, ["list", "--determined-config", str(master)]
    )
    master.write_text("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    assert refused(capsys, ["list", "--determined-config", str(master)]).endswith(
        "not valid YAML: nested too deeply"
    )
    master.write_text("task_container_defaults:\n  image: 3\n")
    # What Determined itself would refuse is a note on the defaults, not a refusal of `list`.
    argv = ["defaults", "--determined-config", str(master), "--cache", f"enroot:{tmp_path}"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"note: {master}: task_container_defaults.image: a number, neither a string nor a map; "
        "not read, so the defaults shown may not be the ones jobs get"
    )


def test_missing_config_files_are_named(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "nope.toml"
    line = refused(capsys, ["list", "--config", str(missing)])
    assert line == f"imgcache: --config {missing}: no such file"
    line = refused(capsys, ["defaults", "--determined-config", str(missing)])
    assert line == f"imgcache: --determined-config {missing}: no such file"
    monkeypatch.setenv("IMGCACHE_CONFIG", str(missing))
    assert refused(capsys, ["list"]) == f"imgcache: IMGCACHE_CONFIG {missing}: no such file"


def test_config_that_is_a_directory_or_a_fifo_is_refused_without_waiting(tmp_path, capsys):
    line = refused(capsys, ["list", "--config", str(tmp_path)])
    assert line == f"imgcache: --config {tmp_path}: not a regular file"
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    # Nobody writes to the FIFO: opening it for reading would wait forever.
    assert refused(capsys, ["list", "--config", str(fifo)]).endswith("not a regular file")


def test_control_characters_in_a_file_name_are_escaped(tmp_path, capsys):
    config = tmp_path / "evil\x1b[2Jname.toml"
    config.write_text("[watch]\npoll_interval = inf\n")
    line = refused(capsys, ["list", "--config", str(config)])
    assert "\x1b" not in line
    assert "evil\\x1b[2Jname.toml: watch.poll_interval" in line
