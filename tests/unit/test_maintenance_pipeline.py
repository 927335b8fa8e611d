"""The two-program pipeline (errors, cancel, progress ticks) and the listing comparison."""

from __future__ import annotations

import io
import os
import sys
import threading
import time

import pytest

from imgcache.backends.maintenance import MaintenanceError, verify
from imgcache.backends.maintenance.pipeline import bytes_read, run_pipeline
from imgcache.backends.tools.run import Cancelled, CancelToken, ToolError


def test_data_flows_from_producer_to_consumer_and_both_commands_are_logged(tmp_path):
    out = tmp_path / "out"
    log = io.StringIO()
    run_pipeline(
        ["sh", "-c", "head -c 300000 /dev/zero"],
        ["sh", "-c", f"wc -c > {out}"],
        logfile=log,
    )
    assert out.read_text().strip() == "300000"
    assert log.getvalue().startswith("$ sh -c 'head -c 300000 /dev/zero' | sh -c 'wc -c > ")
    assert "[exit 0 | 0]" in log.getvalue()


def test_the_failing_consumer_is_blamed_not_the_producer_it_starved():
    with pytest.raises(ToolError) as caught:
        run_pipeline(["yes"], ["sh", "-c", "echo 'disk full' >&2; exit 3"])
    assert caught.value.argv[0] == "sh" and caught.value.returncode == 3
    assert "disk full" in str(caught.value)


def test_a_failing_producer_is_reported_even_if_the_consumer_was_happy():
    with pytest.raises(ToolError) as caught:
        run_pipeline(["sh", "-c", "echo 'cannot read image' >&2; exit 2"], ["cat"])
    assert caught.value.returncode == 2 and "cannot read image" in str(caught.value)


def test_cancel_kills_both_programs_quickly():
    token = CancelToken()
    timer = threading.Timer(0.3, token.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        run_pipeline(["sleep", "30"], ["sleep", "30"], cancel=token)
    assert time.monotonic() - started < 10


def test_progress_ticks_report_how_much_the_producer_read(tmp_path):
    data = tmp_path / "data"
    data.write_bytes(os.urandom(1 << 20))
    ticks: list[int | None] = []
    code = "import sys, time; open(sys.argv[1], 'rb').read(); time.sleep(1.2)"
    run_pipeline([sys.executable, "-c", code, str(data)], ["cat"], on_tick=ticks.append)
    assert ticks and max(t or 0 for t in ticks) >= 1 << 20
    assert bytes_read(os.getpid()) > 0 and bytes_read(-1) is None


LISTING = [
    "drwxr-xr-x 0/0                      48 2024-01-01 00:00 squashfs-root",
    "crw-r--r-- 0/0                   1,  3 2024-01-01 00:00 squashfs-root/dev/null",
    "-rw-r--r-- 1234/5678                 2 2024-01-01 00:00 squashfs-root/etc/cfg",
    "lrwxrwxrwx 0/0                      10 2024-01-01 00:00 squashfs-root/bin/l -> ../etc/cfg",
]


def normalised(lines: list[str]) -> verify.Listing:
    return verify.Listing(tuple(verify._normalise(line) for line in lines))


def test_directory_sizes_are_ignored():
    other = [LISTING[0].replace("48", "37"), *LISTING[1:]]
    verify.compare(normalised(LISTING), normalised(other))


@pytest.mark.parametrize(
    ("index", "old", "new"),
    [
        (2, "1234/5678", "0/0"),
        (2, "-rw-r--r--", "-rw-------"),
        (2, "00:00", "00:01"),
        (1, "1,  3", "1,  5"),
        (3, "../etc/cfg", "/etc/cfg"),
    ],
)
def test_everything_else_counts(index, old, new):
    lines = list(LISTING)
    lines[index] = lines[index].replace(old, new)
    with pytest.raises(MaintenanceError, match="does not list the same files"):
        verify.compare(normalised(LISTING), normalised(lines))


def test_a_lost_entry_is_named():
    with pytest.raises(MaintenanceError, match=r"lost .*squashfs-root/etc/cfg"):
        verify.compare(normalised(LISTING), normalised(LISTING[:2] + LISTING[3:]))


def test_sockets_are_found_in_a_listing():
    sock = "srwxr-xr-x 0/0 0 2024-01-01 00:00 squashfs-root/run/x.sock"
    assert normalised([*LISTING, sock]).sockets == ["/run/x.sock"]
