"""Translating mksquashfs-style jobs.squash_options into tar2sqfs options."""

from __future__ import annotations

import pytest

from imgcache.backends.config import DEFAULT_SQUASH_OPTIONS
from imgcache.backends.maintenance import MaintenanceError
from imgcache.backends.maintenance.squashopts import from_mksquashfs, parse_size


def test_the_default_options_become_zstd_level_3_with_1m_blocks():
    options = from_mksquashfs(DEFAULT_SQUASH_OPTIONS)
    assert (options.codec, options.level, options.block_size) == ("zstd", 3, 1 << 20)
    args = options.tar2sqfs_args()
    assert args[:6] == ["-c", "zstd", "-b", "1048576", "-X", "level=3"]
    assert "-j" in args
    assert options.describe() == "zstd level 3, 1 MiB blocks"


def test_command_line_overrides_win_and_a_new_codec_drops_the_old_extras():
    options = from_mksquashfs(DEFAULT_SQUASH_OPTIONS, codec="xz", block_size="128K")
    assert (options.codec, options.extra, options.block_size) == ("xz", (), 128 * 1024)
    options = from_mksquashfs(DEFAULT_SQUASH_OPTIONS, level=19)
    assert options.extra == ("level=19",)


@pytest.mark.parametrize(
    ("options", "extra"),
    [
        ("-comp lz4 -Xhc", ("hc",)),
        ("-comp xz -Xdict-size 50% -Xbcj x86,arm", ("dictsize=50%", "x86", "arm")),
        ("-comp gzip -Xcompression-level 6 -Xwindow-size 12", ("level=6", "window=12")),
        ("-comp lzo -Xalgorithm lzo1x_999", ("algorithm=lzo1x_999",)),
    ],
)
def test_codec_options_are_translated(options, extra):
    assert from_mksquashfs(options.split()).extra == extra


def test_options_that_change_nothing_in_the_files_are_ignored_and_named():
    options = from_mksquashfs(
        ["-comp", "zstd", "-noappend", "-no-progress", "-mem", "2G", "-processors", "3"]
    )
    assert options.ignored == ("-noappend", "-no-progress", "-mem 2G")
    assert options.jobs == 3


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["-comp", "lzo", "-noD"], "uncompressed"),
        (["-noI"], "uncompressed"),
        (["-all-root"], "-all-root"),
        (["-no-xattrs"], "-no-xattrs"),
        (["-e", "tmp"], "-e"),
        (["-comp", "brotli"], "brotli"),
        (["-b"], "needs a value"),
        (["-b", "3M"], "power of two"),
        (["-comp", "zstd", "-Xcompression-level", "30"], "between 1 and 22"),
        (["-comp", "zstd", "-Xcompression-level", "high"], "not a number"),
    ],
)
def test_options_that_would_change_the_image_are_refused(options, words):
    with pytest.raises(MaintenanceError, match=words):
        from_mksquashfs(options)


def test_levels_are_checked_per_codec():
    with pytest.raises(MaintenanceError, match="lz4 has no compression levels"):
        from_mksquashfs(DEFAULT_SQUASH_OPTIONS, codec="lz4", level=3)
    with pytest.raises(MaintenanceError, match="gzip compression level 12"):
        from_mksquashfs(DEFAULT_SQUASH_OPTIONS, codec="gzip", level=12)


@pytest.mark.parametrize(
    ("text", "size"), [("1M", 1 << 20), ("128K", 131072), ("131072", 131072), ("4k", 4096)]
)
def test_block_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["2M", "1000", "1G", "big", ""])
def test_bad_block_sizes(text):
    with pytest.raises(MaintenanceError):
        parse_size(text)
