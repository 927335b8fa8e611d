"""Adapters for the external programs imgcache drives, one module per program."""
