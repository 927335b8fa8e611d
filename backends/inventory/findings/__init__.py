"""Findings: the fixed vocabulary of what is wrong with an image, and the rules.

Each rule looks at one image and, for `duplicate` and `superseded`, at the whole
inventory and the default images. The vocabulary is part of the JSON interface:
scripts filter on these words, so they never change meaning.

`evaluate` judges a list of images at once. `Evaluator` does the same for the
successive inventories of one catalog, and after a rescan redoes only what can
have changed.

Where things are:

- `vocabulary`: the words (`Term`, `VOCABULARY`, `ORDER`, `finding`) and the
  shared wording of the reasons, `stale`'s included;
- `rules`: the per-image rules (`Rules`), the choice of the `duplicate` copy
  kept, and `evaluate`;
- `duplicates`: the `duplicate` groups the incremental evaluator keeps;
- `evaluator`: `Evaluator`, the incremental evaluator.

The names other modules use are re-exported here.
"""

from __future__ import annotations

from imgcache.backends.inventory.findings.evaluator import Evaluator
from imgcache.backends.inventory.findings.rules import evaluate
from imgcache.backends.inventory.findings.vocabulary import (
    GC_CODES,
    GC_DEFAULT_CODES,
    ORDER,
    VOCABULARY,
    Term,
    finding,
)

__all__ = [
    "GC_CODES",
    "GC_DEFAULT_CODES",
    "ORDER",
    "VOCABULARY",
    "Evaluator",
    "Term",
    "evaluate",
    "finding",
]
