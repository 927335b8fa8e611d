"""Checking a config's `[keys]` table before the app starts.

Textual takes any string as a key and lets a remapped key silently take over
another binding's key; an admin then finds `d` sorting instead of opening the
defaults panel. `check_keymap` refuses, with one line naming the config file and
the entry: an id no binding has, a key name Textual does not know (checked against
`textual.keys`), and a clash: a remapped key that another binding already has in a
section active at the same time. Sections that compete for keys are a section and
itself; the main view with each widget on it (the image table, the tree, the
defaults and jobs panes, the text filter); and "Everywhere" (the app's own bindings)
with the main view and its widgets, and with anything for a priority binding
(ctrl+p). A dialog or screen shadows app-wide keys while it is open, as the app
itself does (`q` closes the job log, `r` puts back in the trash screen), so that is
no clash. Only keys the config gives a binding that it did not have already are
checked: `rescan = "r,f5"` keeps `r` as it was.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from textual.keys import KEY_ALIASES, REPLACED_KEYS, Keys, _character_to_key, key_to_character
from textual.screen import Screen

from imgcache.backends.config import ConfigError, Settings, shown
from imgcache.tui.keys import AppBindings, binding_sections
from imgcache.tui.screens.help import declared
from imgcache.tui.screens.main import MainScreen

#: Modifiers in the order Textual writes them in a key event (sorted).
MODIFIERS = ("alt", "ctrl", "hyper", "meta", "shift", "super")
#: Key names of `textual.keys.Keys` without their modifiers ("f5", "pageup", ...).
NAMED_KEYS = frozenset(
    k.value.rpartition("+")[2] for k in Keys if not k.value.startswith("<") and "-" not in k.value
)
#: Each alias of a key (ctrl+i is tab) to the key itself.
ALIAS_OF = {alias: key for key, aliases in KEY_ALIASES.items() for alias in aliases}
#: Names to suggest for a key that is not known.
_SUGGESTIONS = sorted(
    NAMED_KEYS | {_character_to_key(chr(c)) for c in range(0x21, 0x7F)} | {"space"}
)


class KeyNameError(ValueError):
    """A key name Textual would never match; the message says why."""


def _q(key: str) -> str:
    """A key as the config writes it, in double quotes, control characters escaped."""
    return f'"{shown(key)}"'


def _character_name(base: str) -> str | None:
    """The character a key name like "question_mark" or "slash" stands for, if any."""
    char = key_to_character(REPLACED_KEYS.get(base, base))
    return char if char is not None and _character_to_key(char) == base else None


def normalize_key(key: str) -> str:
    """`key` as Textual matches it ("?" is "question_mark"), or `KeyNameError`."""
    if not key:
        raise KeyNameError("an empty key (two commas, or a comma at an end)")
    if len(key) == 1:
        if not key.isprintable() or key.isspace():
            raise KeyNameError(f"{_q(key)} is not a key name; write space, tab, ...")
        return _character_to_key(key)
    *mods, base = key.split("+")
    if any(m not in MODIFIERS for m in mods) or not base:
        bad = next((m for m in mods if m not in MODIFIERS), "+")
        raise KeyNameError(
            f"{_q(key)}: {_q(bad)} is not a modifier Textual knows ({', '.join(MODIFIERS)})"
        )
    if mods != sorted(set(mods)):
        raise KeyNameError(f"{_q(key)}: Textual writes it {'+'.join([*sorted(set(mods)), base])}")
    if len(base) == 1:
        canonical = _character_to_key(base)
        if canonical != base:
            raise KeyNameError(f"{_q(key)}: write it {'+'.join([*mods, canonical])}")
    elif base not in NAMED_KEYS and _character_name(base) is None:
        close = difflib.get_close_matches(base.lower(), _SUGGESTIONS, n=1, cutoff=0.6)
        hint = f"; did you mean {'+'.join([*mods, close[0]])}?" if close else ""
        raise KeyNameError(
            f"{_q(key)} is not a key name Textual knows "
            f"(e.g. r, R, f5, ctrl+r, question_mark, pageup){hint}"
        )
    char = base if len(base) == 1 else _character_name(base)
    if "shift" in mods and char is not None and not char.isspace() and base != "space":
        raise KeyNameError(f"{_q(key)}: a shifted character arrives as itself (R, not shift+r)")
    return key


def _canonical(key: str) -> str:
    return ALIAS_OF.get(key, key)


@dataclass(frozen=True, slots=True)
class _Bound:
    section: str
    cls: type
    key: str
    """The key as Textual matches it: aliases (ctrl+i) made the key itself (tab)."""
    written: str
    ident: str
    """The binding id, else its action: two entries with the same ident are one binding."""
    new: bool
    """The config gives this key to this binding; the app's own keys are never a clash."""
    priority: bool
    """Textual checks it before any screen's or widget's bindings."""


def _on_main_view(cls: type) -> bool:
    """The main screen, or a widget of the help's sections (they all sit on it)."""
    return cls is MainScreen or (not issubclass(cls, Screen) and cls is not AppBindings)


def _together(a: _Bound, b: _Bound) -> bool:
    """Whether `a` and `b` compete for a key: both are live at once and neither is meant
    to shadow the other."""
    if a.cls is b.cls:
        return True
    if AppBindings in (a.cls, b.cls):
        app, other = (a, b) if a.cls is AppBindings else (b, a)
        # A dialog or screen shadows app-wide keys while it is open, by design (q closes
        # the job log); on the main view and its panes an app-wide key must work.
        return app.priority or _on_main_view(other.cls)
    # The main view's keys against the keys of a pane on it.
    return MainScreen in (a.cls, b.cls) and _on_main_view(a.cls) and _on_main_view(b.cls)


def keymap_problem(keymap: Mapping[str, str], origins: Mapping[str, str]) -> str | None:
    """The first problem of `keymap` (binding id -> keys) as one line, else None."""
    sections = binding_sections()
    declared_by = [(title, cls, declared(cls, own_only=own)) for title, cls, own in sections]
    ids = sorted({b.id for _t, _c, bindings in declared_by for b in bindings if b.id})
    wanted: dict[str, list[str]] = {}
    for binding_id, text in keymap.items():
        where = f"{origins.get(f'keys.{binding_id}', 'config')}: keys.{binding_id}"
        if binding_id not in ids:
            close = difflib.get_close_matches(binding_id, ids, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            return f"{where}: no binding has this id{hint} (the help screen, ?, lists them)"
        try:
            keys = [normalize_key(k.strip()) for k in text.split(",")]
        except KeyNameError as exc:
            return f"{where}: {exc}"
        wanted[binding_id] = list(dict.fromkeys(keys))
    own_keys = {
        (cls, b.id or b.action, _canonical(b.key))
        for _title, cls, bindings in declared_by
        for b in bindings
    }
    bound = [
        _Bound(title, cls, k, key, ident, (cls, ident, k) not in own_keys, b.priority)
        for title, cls, bindings in declared_by
        for b in bindings
        for ident in [b.id or b.action]
        for key in wanted.get(b.id or "", [b.key])
        for k in [_canonical(key)]
    ]
    for binding_id in wanted:
        where = f"{origins.get(f'keys.{binding_id}', 'config')}: keys.{binding_id}"
        for mine in (x for x in bound if x.ident == binding_id and x.new):
            for other in bound:
                if other.key == mine.key and other.ident != mine.ident and _together(mine, other):
                    taken = "also given to" if other.new else "already bound to"
                    key = mine.written
                    if mine.written != mine.key:
                        key += f" (the same key as {mine.key})"
                    return (
                        f"{where}: {key} is {taken} {other.ident} ({other.section}); "
                        f"choose another key, or remap {other.ident} too"
                    )
    return None


def check_keymap(settings: Settings) -> None:
    """Refuse the settings' `[keys]` table if it has a problem (`ConfigError`, one line)."""
    problem = keymap_problem(settings.keys, settings.origins)
    if problem is not None:
        raise ConfigError(problem)
