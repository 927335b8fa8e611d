"""imgcache's domain: caches, references, probes, findings and jobs.

Usable without the UI: the command line and the tests drive it directly, and it
never imports Textual.
"""
