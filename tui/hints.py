"""The keys named in border hints ("c cancels", "P pulls ..."), as the admin's keymap has them.

A config's `[keys]` table remaps a binding by its id; a hint written with the
default key would then send the admin to a key that no longer does it.
"""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding


def hint_key(app: App, binding_id: str, default: str) -> str:
    """How to write the key of `binding_id` in a hint: its first remapped key, else `default`."""
    settings = getattr(app, "settings", None)
    keys = settings.keys.get(binding_id, "") if settings is not None else ""
    first = next((k.strip() for k in keys.split(",") if k.strip()), default)
    return app.get_key_display(Binding(first, ""))
