"""The compress dialog (`C`): which images will be rebuilt, with what, and which are refused.

Every image is checked before anything is queued, with the rules the job
applies (`compress.check_source`: a squashfs or a SIF with a squashfs primary
partition, not corrupt, not already in the configured codec with compressed
data unless forced), plus what the job would refuse later anyway: a symbolic
link, or another user's file when imgcache is not running as root. Refused
images are listed with the reason and left out. Signed SIF files are marked
with `SIGNED_WARNING`; going ahead with them takes a second, explicit yes.
`f` forces a rebuild of images already compressed as configured.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.text import Text
from textual.binding import Binding

from imgcache.backends.inventory.model import Image
from imgcache.backends.maintenance import MaintenanceError
from imgcache.backends.maintenance.compress import LEGACY_CODECS, SIGNED_WARNING, check_source
from imgcache.backends.maintenance.squashopts import SquashOptions
from imgcache.tui.format import compression_label, plural
from imgcache.tui.screens.option_dialog import OptionDialog
from imgcache.tui.widgets.plan_view import (
    cache_of,
    file_table,
    refused_table,
    section,
    total_line,
)


@dataclass(frozen=True, slots=True)
class CompressCheck:
    """The images compress would take, the signed ones among them, and the refused."""

    ready: tuple[Image, ...]
    signed: tuple[Image, ...]
    """Signed SIF files among `ready`: their signatures will no longer verify."""
    refused: tuple[tuple[Image, str], ...]


def _refusal(image: Image, exc: MaintenanceError, options: SquashOptions) -> str:
    """The reason without the path (the table shows it), in the app's words."""
    if exc.reason == "nothing-to-do":
        return f"already {options.codec} with compressed data (f rebuilds it anyway)"
    text = str(exc)
    for prefix in (f"{image.path}: ", f"{image.path} "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def check_images(
    images: Sequence[Image], options: SquashOptions, *, force: bool, euid: int | None = None
) -> CompressCheck:
    """Split `images` into those compress will take and those it refuses (and why)."""
    euid = os.geteuid() if euid is None else euid
    ready: list[Image] = []
    refused: list[tuple[Image, str]] = []
    for image in images:
        if stat.S_ISLNK(image.stat.mode):
            refused.append((image, "a symbolic link; imgcache never follows links"))
            continue
        try:
            # The signature question is asked separately, after this dialog.
            check_source(image.probe, options, image.path, force=force, allow_signed=True)
        except MaintenanceError as exc:
            refused.append((image, _refusal(image, exc, options)))
            continue
        if euid != 0 and image.stat.uid != euid:
            refused.append((image, f"owned by {image.owner}; only they or root can replace it"))
            continue
        ready.append(image)
    signed = tuple(i for i in ready if i.probe.sif is not None and i.probe.sif.signed)
    return CompressCheck(tuple(ready), signed, tuple(refused))


def compress_text(
    check: CompressCheck, options: SquashOptions, names: Mapping[str, str]
) -> tuple[RenderableType, bool]:
    """The dialog's body for one check, and whether anything will be compressed."""
    parts: list[RenderableType] = []
    if check.ready:
        size = sum(i.stat.size for i in check.ready)
        jobs = f"one job each, rebuilt with {options.describe()}"
        parts.append(total_line(plural(len(check.ready), "image"), size, f"· {jobs}"))
        rows = []
        signed = {image.path for image in check.signed}
        for image in check.ready:
            cache, rel = cache_of(image.path, image.root, names)
            now = compression_label(image) or "?"
            note = f"{now} → {options.codec}"
            if image.path in signed:
                note += " · ⚠ signed"
            rows.append((image.stat.size, cache, rel, note))
        parts += [Text(""), file_table(rows, why="COMPRESSION")]
        legacy = ", ".join(LEGACY_CODECS)
        parts.append(Text(""))
        parts.append(
            Text(
                "→ each is replaced only if the new image probes valid, lists the same files "
                f"and is smaller ({legacy} images are replaced anyway); jobs reading the old "
                "file keep reading it",
                style="italic",
            )
        )
    else:
        parts.append(Text("Nothing to compress:", style="bold red"))
    if check.signed:
        which = plural(len(check.signed), "signed SIF file")
        warning = f"⚠ {which}: {SIGNED_WARNING}; you will be asked again"
        parts.append(Text(""))
        parts.append(Text(warning, style="bold yellow"))
    if check.refused:
        refused = [(i.path, i.root, why, i.stat.size) for i, why in check.refused]
        title = f"Left out: {plural(len(refused), 'image')}"
        parts.append(section(title, refused_table(refused, names), "bold red"))
    return Group(*parts), bool(check.ready)


class CompressDialog(OptionDialog):
    """Confirm compressing images; dismisses with `force` on yes, None on no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Compress", id="confirm"),
        Binding("n,escape", "answer(False)", "Cancel", id="close"),
        Binding("f", "toggle_option", "Force a rebuild of compressed images", id="toggle_force"),
    ]

    def __init__(
        self,
        images: Sequence[Image],
        options: SquashOptions,
        names: Mapping[str, str],
        *,
        euid: int | None = None,
    ) -> None:
        self.images = tuple(images)
        self.options = options
        self.euid = euid

        def body(force: bool) -> tuple[RenderableType, bool]:
            check = check_images(self.images, options, force=force, euid=euid)
            return compress_text(check, options, names)

        super().__init__(
            f"Compress {plural(len(self.images), 'image')}",
            body,
            option="force: rebuild images already compressed so (f)",
            yes="Compress",
        )
