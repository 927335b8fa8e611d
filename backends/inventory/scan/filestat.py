"""What the scanner keeps of a file's `lstat`, and the names of its owners.

`file_stat` makes a `FileStat` from an `lstat` result; `same_stat` tells an
unchanged file without making one; `user_name` and `group_name` name a file's
owner and group, remembered per id for the whole process.

A test can pin the owner names by setting `user_name` and `group_name` here:
the scanner's records and `imgcache.backends.maintenance.common.owner_name` look
them up on this module.
"""

from __future__ import annotations

import grp
import os
import pwd
from functools import lru_cache

from imgcache.backends.inventory.model import FileStat, new_file_stat


def file_stat(st: os.stat_result) -> FileStat:
    """Keep the parts of an `lstat` result imgcache uses."""
    # The fast constructor, positional in FileStat's field order: one per new or
    # changed file of a scan (see imgcache.backends.inventory.model.fast_constructor).
    return new_file_stat(
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime,
        st.st_atime,
        st.st_ctime,
        st.st_mode,
        st.st_uid,
        st.st_gid,
    )


def same_stat(fst: FileStat, st: os.stat_result) -> bool:
    """True when `st` is the lstat `fst` was made from: `file_stat(st) == fst`,
    without building a FileStat for every unchanged file of a rescan."""
    return (
        fst.ino == st.st_ino
        and fst.mtime == st.st_mtime
        and fst.size == st.st_size
        and fst.dev == st.st_dev
        and fst.ctime == st.st_ctime
        and fst.atime == st.st_atime
        and fst.mode == st.st_mode
        and fst.uid == st.st_uid
        and fst.gid == st.st_gid
    )


@lru_cache(maxsize=4096)
def user_name(uid: int) -> str:
    """The user name for `uid`, or the number when the user is unknown."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str:
    """The group name for `gid`, or the number when the group is unknown."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
