"""What the maintenance commands share: naming files by PATH|REF, and printing plans and results.

Every name printed here comes from a shared cache, where anyone with write access
chose it: it goes through `printable`, so a name holding ESC or a newline prints
escaped and reads as one name on one line. With `--json` the plan for people goes
to stderr (`plan_stream`) and stdout carries the one JSON document.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from imgcache.tui.cli_common import Fail
from imgcache.tui.format import human_size, plural, printable


def resolve(inventory: Any, texts: list[str], command: str) -> list[Any]:
    """PlanItems for PATH|REF arguments; `Fail` for a ref that matches none or several."""
    from imgcache.backends.inventory import caches, refs
    from imgcache.backends.maintenance import MaintenanceError, PlanItem
    from imgcache.backends.maintenance.safety import rel_in_root

    by_path = {image.path: image for image in inventory.images}
    items: list[PlanItem] = []
    for text in texts:
        if text.startswith(("/", "./", "../")) or os.path.lexists(text):
            for spec in inventory.settings.caches:
                try:
                    rel = rel_in_root(spec.path, text)
                except MaintenanceError as exc:
                    if exc.reason == "root":
                        raise Fail(f"{command}: {exc}") from None
                    continue
                path = os.path.join(spec.path, rel)
                # Not scanned (behind a link, in the trash, new): the checks will say why.
                image = by_path.get(path)
                size, seen = (image.stat.size, image.stat) if image else (0, None)
                items.append(PlanItem(path, size, "named on the command line", spec.path, seen))
                break
            else:
                roots = ", ".join(spec.path for spec in inventory.settings.caches)
                raise Fail(f"{command}: {text} is outside every configured cache ({roots})")
            continue
        try:
            ref = refs.parse(text)
        except refs.RefError as exc:
            raise Fail(
                f"{command}: {text}: no such file, and not an image reference ({exc})"
            ) from None
        found = [
            image
            for image in inventory.images
            if image.ref is not None and image.ref in (text, caches.ref_string(image.cache, ref))
        ]
        if not found:
            raise Fail(f"{command}: no cached image is {text}")
        if len(found) > 1:
            listed = ", ".join(image.path for image in found)
            raise Fail(f"{command}: {text} matches {len(found)} files; name one: {listed}")
        image = found[0]
        items.append(PlanItem(image.path, image.stat.size, f"ref {text}", image.root, image.stat))
    return list({item.path: item for item in items}.values())


def print_items(
    items: Iterable[Any],
    total_label: str,
    noun: str = "file",
    nouns: str | None = None,
    *,
    notes: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> None:
    """Print plan items as `size  path  (reason)` lines, each note under its file, and
    the total."""
    out = sys.stdout if out is None else out
    items = list(items)
    for item in items:
        print(f"  {human_size(item.size):>10}  {printable(item.path)}  ({printable(item.reason)})",
              file=out)  # fmt: skip
        note = (notes or {}).get(item.path)
        if note:
            print(f"  {'':>10}  ! {printable(note)}", file=out)
    total = sum(item.size for item in items)
    print(f"{plural(len(items), noun, nouns)}, {human_size(total)} {total_label}", file=out)


def print_removed(result: Any) -> int:
    """Print what a delete did, one line per file; returns the exit status."""
    for removed in result.removed:
        where = f"moved to {printable(removed.trashed_to)}" if removed.trashed_to else "deleted"
        print(f"{printable(removed.path)}: {where}")
    for batch in result.purged_batches:
        print(f"purged old trash {printable(batch)}")
    for _path, why in result.failed:
        print(f"imgcache: {printable(why)}", file=sys.stderr)
    print(f"{plural(len(result.removed), 'file')}, {human_size(result.bytes)} removed")
    return 1 if result.failed else 0


def trash_note(settings: Any, purge: bool) -> str:
    """Where deleted files go, for the plan's total line."""
    if purge:
        return "to delete at once"
    return f"to move to the trash (purged after {settings.trash_grace_days} days)"


def error(command: str, text: str) -> None:
    """One line on stderr: `imgcache COMMAND: text`, escaped."""
    print(f"imgcache {command}: {printable(text)}", file=sys.stderr)
