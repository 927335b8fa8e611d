"""`imgcache trash`: see what was deleted, put it back, or empty the trash.

- `imgcache trash` lists every cache's batches: when, by whom (from the batch's
  manifest), how big, and each file under its old name; `--json` prints them.
- `--restore BATCH|PATH...` puts files back under their old names: a batch name,
  a batch directory, a file or folder inside a batch, or the image's old path
  (the newest batch holding it). If any of the names is taken now, nothing is put
  back and each taken name is one line.
- `--empty [BATCH...]` purges every batch (or those named), whatever their age.

Both writes show their plan first, ask on a terminal and refuse without `--yes`
where there is none; `--read-only` refuses them. Exit status: 0 done, 1 refused
or failed, 2 usage (and read-only, and no terminal without `--yes`).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from imgcache.tui.cli_common import (
    Fail,
    Formatter,
    add_common_options,
    check_roots,
    confirm,
    load_settings,
    plan_stream,
    print_json,
    usage,
)
from imgcache.tui.cli_plans import error
from imgcache.tui.format import human_size, plural, printable

_TRASH = """\
Deleting (rm, gc, D in the app) moves images into ROOT/.imgcache-trash/<UTC time>-<id>/,
one batch per delete, purged after delete.trash_grace_days. Without options this
lists the batches of every cache: when, by whom, what and how big."""
_EXAMPLES = """\
examples:
  imgcache trash                                    what was deleted, by whom
  imgcache trash --restore 20250101T120000Z-1a2b3c4d  put a whole batch back
  imgcache trash --restore /shared/sif/ubuntu:22.04   the newest deleted copy of it
  imgcache trash --empty --yes                      purge every batch now
"""


def _shown_as(args: argparse.Namespace) -> str:
    return "trash --restore" if args.restore else "trash --empty"


def register(sub: Any) -> None:
    """Add `trash` to the `imgcache` subparsers `sub`."""
    p = sub.add_parser(
        "trash",
        help="list deleted images by batch; restore them or empty the trash",
        description=_TRASH,
        epilog=_EXAMPLES,
        formatter_class=Formatter,
    )
    add_common_options(p, suppress=True)
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--restore",
        nargs="+",
        metavar="BATCH|PATH",
        help="put these back under their old names (a batch, a file in one, or the old path)",
    )
    what.add_argument(
        "--empty",
        nargs="*",
        metavar="BATCH",
        help="purge every batch now (or only the batches named)",
    )
    p.add_argument("--yes", action="store_true", help="do not ask")
    p.add_argument("--json", action="store_true", help="print the batches or the result as JSON")
    p.set_defaults(
        handler=cmd_trash,
        writes=lambda args: bool(args.restore) or args.empty is not None,
        shown_as=_shown_as,
    )


def cmd_trash(args: argparse.Namespace) -> int:
    """`imgcache trash`, with `--restore` or `--empty`."""
    from imgcache.backends.maintenance import MaintenanceError

    settings = load_settings(args)  # refuses --restore and --empty when read-only
    check_roots(settings)
    if not settings.caches:
        raise usage("no cache configured: pass --cache KIND:PATH")
    try:
        if args.restore:
            return _restore(args, settings)
        if args.empty is not None:
            return _empty(args, settings)
    except MaintenanceError as exc:
        raise Fail(f"trash: {exc}", 2 if exc.reason == "usage" else 1) from None
    return _list(args, settings)


def _batches(settings: Any) -> list[Any]:
    from imgcache.backends.maintenance.batches import list_batches

    found = []
    for spec in settings.caches:
        batches, problems = list_batches(spec.path)
        for problem in problems:
            print(f"imgcache: warning: {printable(problem)}", file=sys.stderr)
        found += batches
    return found


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _list(args: argparse.Namespace, settings: Any) -> int:
    batches = _batches(settings)
    grace = settings.trash_grace_days
    if args.json:
        print_json([batch.as_dict(grace) for batch in batches])
        return 0
    if not batches:
        print(f"the trash is empty ({plural(len(settings.caches), 'cache')})")
        return 0
    for batch in batches:
        via = f" ({batch.by.via})" if batch.by is not None and batch.by.via else ""
        count = len(batch.files)
        print(
            f"{printable(batch.path)}\n"
            f"  deleted {_when(batch.created)} by {printable(batch.by_label)}{via}; "
            f"{plural(count, 'file')}, {human_size(batch.size)}; "
            f"purged after {_when(batch.expires(grace))}"
        )
        for f in batch.files:
            kind = "" if f.kind == "file" else f"  ({f.kind}, never restored)"
            print(f"  {human_size(f.size):>10}  {printable(f.rel)}{kind}")
    total = human_size(sum(batch.size for batch in batches))
    print(f"{plural(len(batches), 'batch', 'batches')}, {total} in the trash")
    return 0


def _restore(args: argparse.Namespace, settings: Any) -> int:
    from imgcache.backends.maintenance import restore

    items = list({item.trashed_path: item for text in args.restore
                  for item in restore.select(settings, text)}.values())  # fmt: skip
    refused = restore.check(items)
    if refused:
        for _item, why in refused:
            error("trash", why)
        error("trash", "nothing was put back")
        return 1
    out = plan_stream(args)
    for item in items:
        print(f"  {human_size(item.size):>10}  {printable(item.path)}  "
              f"(from {printable(item.trashed_path)})", file=out)  # fmt: skip
    total = human_size(sum(item.size for item in items))
    print(f"{plural(len(items), 'file')}, {total} to put back", file=out)
    question = f"Put back {plural(len(items), 'file')}?"
    status = confirm("trash", question, args.yes, "restore", out)
    if status is not None:
        return status
    result = restore.restore(settings, items)
    if args.json:
        print_json(result.as_dict())
    else:
        for item in result.restored:
            print(f"{printable(item.path)}: put back")
    for _path, why in result.failed:
        error("trash", why)
    return 1 if result.failed else 0


def _empty(args: argparse.Namespace, settings: Any) -> int:
    from imgcache.backends.maintenance.purge import purge_trash

    batches = _batches(settings)
    if args.empty:
        wanted = set(args.empty)
        unknown = wanted - {b.name for b in batches} - {b.path for b in batches}
        if unknown:
            raise usage(f"trash --empty: no batch {', '.join(sorted(unknown))} in any cache")
        batches = [b for b in batches if b.name in wanted or b.path in wanted]
    out = plan_stream(args)
    for batch in batches:
        who = f"by {printable(batch.by_label)}, {plural(len(batch.files), 'file')}"
        print(f"  {human_size(batch.size):>10}  {printable(batch.path)}  ({who})", file=out)
    total = sum(batch.size for batch in batches)
    print(f"{plural(len(batches), 'batch', 'batches')}, {human_size(total)} to purge now", file=out)
    if not batches:
        if args.json:
            print_json({"purged": [], "failed": [], "bytes": 0})
        return 0
    question = (
        f"Purge {plural(len(batches), 'batch', 'batches')}, {human_size(total)}? "
        "They cannot be put back"
    )
    status = confirm("trash", question, args.yes, "purge", out)
    if status is not None:
        return status
    purged: list[str] = []
    failed: list[tuple[str, str]] = []
    for root in dict.fromkeys(batch.root for batch in batches):
        only = {batch.path for batch in batches if batch.root == root}
        done = purge_trash(root, None, only=only)
        purged += done.purged
        failed += done.failed
    freed = sum(batch.size for batch in batches if batch.path in purged)
    if args.json:
        print_json({
            "purged": purged,
            "failed": [{"path": p, "reason": why} for p, why in failed],
            "bytes": freed,
        })  # fmt: skip
    else:
        for path in purged:
            print(f"purged {printable(path)}")
        print(f"{plural(len(purged), 'batch', 'batches')}, {human_size(freed)} purged")
    for _path, why in failed:
        error("trash", why)
    return 1 if failed else 0
