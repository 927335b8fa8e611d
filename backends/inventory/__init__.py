"""What is in the caches: references, file layouts, header probes, scans, findings, defaults.

Read-only by design: nothing here writes to a cache. `refs` is the reference
grammar and `naming` each cache layout's file naming; `probe/` reads SIF, squashfs
and tar headers; `scan/` walks the caches and keeps what it saw; `findings/`
judges each file; `defaults` knows each environment's default image; `catalog`
joins them into an `Inventory`; `export` turns one into JSON.
"""
