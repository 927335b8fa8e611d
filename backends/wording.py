"""How counts read in messages: "1 file", "3 files", never "file(s)".

Here rather than in the UI so that the backends' own messages (a job's result, a
refusal) can use it too; `imgcache.tui.format` re-exports it for the app and the CLI.
"""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """ "1 file", "3 files", "1,024 files" (`nouns` for irregular plurals: "batch", "batches")."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"
