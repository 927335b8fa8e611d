"""The kinds of value a setting may hold, each with its type and range.

Each maker returns a converter: the raw TOML value in, the checked value out, or
`Invalid` with the cause (the schema adds the file and the key in front).
`describe` says the range in words, for messages, `imgcache config --show` and the
README.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imgcache.backends.inventory import refs


class Invalid(ValueError):
    """A value is of the wrong type or out of range; the message says why."""


def toml_type(value: Any) -> str:
    """The TOML name of a value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return "a date or time"
    return type(value).__name__


@dataclass(frozen=True, slots=True)
class Kind:
    """How one setting's value is checked and converted."""

    convert: Callable[[Any], Any]
    describe: str
    """The type and range in words, e.g. "an integer from 1 to 64"."""


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected {what}, not {toml_type(value)}")
    if not value.isprintable():
        raise Invalid("contains control characters")
    return value


def integer(low: int, high: int, unit: str = "") -> Kind:
    """A whole number from `low` to `high`."""
    words = f"an integer from {low} to {high}{' ' + unit if unit else ''}"

    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                raise Invalid(f"expected {words}, not a float (write {int(value)})")
            raise Invalid(f"expected {words}, not {toml_type(value)}")
        if not low <= value <= high:
            raise Invalid(f"{value} is out of range: {words}")
        return value

    return Kind(convert, words)


def seconds(low: float, high: float) -> Kind:
    """A finite number of seconds from `low` to `high`: never nan, never inf."""
    words = f"a number of seconds from {low:g} to {high:g}"

    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"expected {words}, not {toml_type(value)}")
        if not math.isfinite(value) or not low <= value <= high:
            raise Invalid(f"{value!r} is out of range: {words}")
        return float(value)

    return Kind(convert, words)


def boolean() -> Kind:
    """true or false."""

    def convert(value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"expected true or false, not {toml_type(value)}")
        return value

    return Kind(convert, "true or false")


def choice(*names: str) -> Kind:
    """One of a few words."""
    words = "one of " + ", ".join(names)

    def convert(value: Any) -> str:
        text = _text(value, "a string")
        if text not in names:
            raise Invalid(f"{text!r} is not {words}")
        return text

    return Kind(convert, words)


_OCTAL = re.compile(r"(?:0o)?([0-7]{1,4})")
_SPECIAL_BITS = {0o4000: "setuid", 0o2000: "setgid", 0o1000: "sticky"}


def mode(required: int, what: str, example: str) -> Kind:
    """An octal permission string such as "0644": bits within 0777, `required` set,
    and never writable by others (any user could then replace what jobs run)."""
    words = (
        f'an octal mode string such as "{example}": permission bits only (at most 0777), '
        f"at least 0{required:o}, not writable by others"
    )

    def convert(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            raise Invalid(f'write the mode as a string such as "{example}", not an integer')
        text = _text(value, words)
        match = _OCTAL.fullmatch(text.strip())
        if match is None:
            raise Invalid(f'{text!r} is not an octal mode like "0644"')
        bits = int(match.group(1), 8)
        special = [name for bit, name in _SPECIAL_BITS.items() if bits & bit]
        if special:
            raise Invalid(
                f"{text!r} sets the {' and '.join(special)} bit; only permission bits "
                "(at most 0777) are allowed"
            )
        if bits & required != required:
            raise Invalid(f"{text!r} lacks 0{required:o}: {what}")
        if bits & 0o002:
            raise Invalid(f"{text!r} lets every user write; any user could then replace images")
        return bits

    return Kind(convert, words)


def image() -> Kind:
    """A default image: a reference, an absolute path, or `oci-archive:`/`docker-archive:`
    and a path."""
    words = "an image reference, or a file path (/path, oci-archive:/path)"

    def convert(value: Any) -> str:
        text = _text(value, words).strip()
        if not text:
            raise Invalid(f"empty; expected {words}")
        for prefix in ("oci-archive:", "docker-archive:"):
            if text.startswith(prefix):
                if not text[len(prefix) :].startswith("/"):
                    raise Invalid(f"{text!r}: the path after {prefix} must be absolute")
                return text
        if text.startswith("/"):
            return text
        try:
            refs.parse(text)
        except refs.RefError as exc:
            raise Invalid(f"{text!r} is not an image reference: {exc}") from None
        return text

    return Kind(convert, words)


def command_options() -> Kind:
    """Options for a command, written as a shell would split them."""
    words = 'command-line options as a shell would split them, e.g. "-comp zstd -b 1M"'

    def convert(value: Any) -> tuple[str, ...]:
        text = _text(value, words)
        try:
            return tuple(shlex.split(text))
        except ValueError as exc:
            # shlex says "No closing quotation": keep its cause, lower-cased.
            cause = str(exc)[:1].lower() + str(exc)[1:]
            raise Invalid(f"{text!r} cannot be split into options: {cause}") from None

    return Kind(convert, words)


#: User names as passwd, LDAP and sssd give them: no blanks, no separators.
_USER = re.compile(r"[^\s:/,]{1,256}")


def user_names() -> Kind:
    """An array of user names."""
    words = 'an array of user names, e.g. ["alice", "bob"]'

    def convert(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise Invalid(f"expected {words}, not {toml_type(value)}")
        names = []
        for item in value:
            if not isinstance(item, str):
                raise Invalid(f"expected {words}; found {toml_type(item)}")
            if _USER.fullmatch(item) is None or not item.isprintable():
                raise Invalid(f"{shown_value(item)} is not a user name")
            names.append(item)
        return tuple(names)

    return Kind(convert, words)


def key_list() -> Kind:
    """Keys for one binding, comma-separated (the app checks the key names)."""
    words = 'keys separated by commas, e.g. "r,f5"'

    def convert(value: Any) -> str:
        text = _text(value, words)
        if not text.strip():
            raise Invalid(f"empty; expected {words}")
        return text

    return Kind(convert, words)


def name(what: str, known: Callable[[], list[str]]) -> Kind:
    """One of the names `known()` returns (e.g. the shipped profiles)."""

    def convert(value: Any) -> str:
        text = _text(value, f"the name of {what}")
        names = known()
        if text not in names:
            raise Invalid(f"unknown {what} {text!r}{nearest(text, names)}")
        return text

    return Kind(convert, f"the name of {what}")


def nearest(word: str, names: list[str]) -> str:
    """`; did you mean X?` for the closest of `names`, or the list of them."""
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    close = close or [n for n in names if word and (n.startswith(word) or word.startswith(n))]
    if close:
        return f"; did you mean {close[0]}?"
    return f" (known: {', '.join(names)})"


def shown_value(value: Any) -> str:
    """A value as it would be written in TOML, control characters escaped."""
    if isinstance(value, str):
        return repr(value)
    return str(value)
