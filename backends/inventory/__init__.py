"""What is in the caches: references, file layouts, header probes, scans, findings, defaults.

Read-only by design: nothing here writes to a cache. `refs` parses references
(`refgrammar` holds the grammar) and `naming` is each cache layout's file naming;
`model` holds the records; `caches` the cache kinds; `probe/` reads SIF, squashfs
and tar headers; `scan/` walks the caches and keeps what it saw; `findings/`
judges each file; `defaults` knows each environment's default image; `catalog`
joins them into an `Inventory`; `export` turns one into JSON.
"""
