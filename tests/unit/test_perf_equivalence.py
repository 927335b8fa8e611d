"""The fast paths give what the slow ones give.

Scanning was made cheaper per file by shortcuts: records built without the
frozen dataclass `__init__`, references matched by one pattern instead of being
checked part by part, findings judged again only where something changed.
Each shortcut is checked here against the path it stands in for, on generated
input: same results, same errors, same findings.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgcache.backends.config import Settings
from imgcache.backends.inventory import naming, refs
from imgcache.backends.inventory.defaults import resolve_defaults
from imgcache.backends.inventory.findings import Evaluator, evaluate
from imgcache.backends.inventory.model import (
    CacheKind,
    FileStat,
    Finding,
    Format,
    Image,
    ProbeResult,
    SquashInfo,
    fast_constructor,
    new_file_stat,
    new_image,
    new_probe_result,
)
from tests.unit.test_refs import grammar_soup, near_refs, references

FAST = settings(max_examples=400, deadline=None, database=None)


# --- records ---------------------------------------------------------------------


def test_fast_constructed_records_are_the_records():
    args = (1, 2, 3, 4.5, 5.5, 6.5, 0o100644, 1000, 1000)
    fast, slow = new_file_stat(*args), FileStat(*args)
    assert type(fast) is FileStat
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert pickle.loads(pickle.dumps(fast)) == slow
    assert copy.copy(fast) == slow
    assert dataclasses.replace(fast, size=9) == dataclasses.replace(slow, size=9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.size = 9  # type: ignore[misc]
    # Defaults and keywords as the class has them.
    assert new_probe_result(Format.SIF, note="x") == ProbeResult(Format.SIF, note="x")
    image = new_image(
        CacheKind.ENROOT, "/r", "/r/a", None, "e", fast, ProbeResult(Format.UNKNOWN), "u", "g"
    )
    assert image == Image(
        CacheKind.ENROOT, "/r", "/r/a", None, "e", slow, ProbeResult(Format.UNKNOWN), "u", "g"
    )
    assert image.findings == () and image.blocked_by is None


def test_fast_constructor_refuses_what_it_cannot_mimic():
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    for cls in (NoSlots, NotFrozen, Factory):
        with pytest.raises(TypeError):
            fast_constructor(cls)


# --- references --------------------------------------------------------------------


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except refs.RefError as exc:
        return ("error", str(exc))


texts = st.one_of(
    references().map(str),
    near_refs,
    grammar_soup,
    st.text(alphabet="abcAZ09._-/:@[]+", max_size=300),
    st.builds(
        lambda n, tail: "a" * n + tail, st.integers(240, 270), st.sampled_from(["", ":1", "/b"])
    ),
)


@FAST
@given(texts)
def test_fast_parse_agrees_with_the_checked_parse(text):
    fast = refs._fast_parse(text)
    slow = _outcome(refs._parse_checked, text)
    if fast is not None:
        assert slow == ("ok", fast)
    assert _outcome(refs.parse, text) == slow


@FAST
@given(texts)
def test_normalized_agrees_with_the_validating_constructor(text):
    try:
        ref = refs.parse(text)
    except refs.RefError:
        return
    registry = ref.registry
    if registry is None or registry == "index.docker.io":
        registry = "docker.io"
    path = ref.path
    if registry == "docker.io" and "/" not in path:
        path = "library/" + path
    tag = ref.tag if ref.tag is not None or ref.digest is not None else "latest"
    expected = _outcome(refs.Reference, registry, path, tag, ref.digest)
    if (registry, path, tag) == (ref.registry, ref.path, ref.tag):
        expected = ("ok", ref)
    assert _outcome(ref.normalized) == expected


@FAST
@given(st.one_of(texts, references().map(lambda r: str(r).replace("/", "+").replace(":", "+"))))
def test_enroot_names_agree_with_the_validating_constructor(text):
    name = text + ".sqsh"
    parts = text.split("+")
    got = _outcome(naming.enroot_ref_from_filename, name)
    if not text or not all(parts) or "/" in name:
        assert got[0] == "error"
        return
    path, tag = (parts[0], None) if len(parts) == 1 else ("/".join(parts[:-1]), parts[-1])
    if len(parts) > 1 and re.fullmatch(r"sha256:[0-9a-f]{64}", tag):
        assert got == _outcome(refs.Reference, None, path, None, tag)  # enroot's digest names
        return
    assert got == _outcome(refs.Reference, None, path, tag)


# --- findings: the evaluator against evaluate -----------------------------------------

DAY = 86400
NOW = 1_750_000_000.0
ROOTS = {CacheKind.SINGULARITY: "/c/sif", CacheKind.ENROOT: "/c/enroot"}
REFS = [
    "docker.io/determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730",
    "docker.io/determinedai/environments:old-tag",
    "nvcr.io/nvidia/pytorch:24.01-py3",
    "docker.io/library/ubuntu:22.04",
    "determinedai/environments:old-tag",
    None,
]


def _squash(rng: random.Random) -> SquashInfo:
    flags = rng.choice([0x00C0, 0x00C2, 0x00CB, 0x00C0])
    return SquashInfo(
        rng.choice(["zstd", "lzo", "gzip"]), 6, 1 << 17, flags, 10, 1 << 20, 0, (4, 0),
        not flags & 1, not flags & 2, not flags & 8, False, True, True, False,
    )  # fmt: skip


def _image(rng: random.Random, path: str, kind: CacheKind, now: float) -> Image:
    fmt = rng.choice([Format.SIF, Format.SQUASHFS, Format.UNKNOWN])
    error = rng.choice([None, None, None, "truncated", ""])
    probe = ProbeResult(
        fmt,
        error=error if fmt is not Format.UNKNOWN else None,
        squashfs=_squash(rng) if fmt is not Format.UNKNOWN and rng.random() < 0.8 else None,
        note=rng.choice([None, None, "symbolic link to x; imgcache does not follow links"]),
    )
    # Ages around the 90-day threshold and around day boundaries.
    age = rng.choice([rng.uniform(0, 400), 90 + rng.uniform(-0.01, 0.01), rng.randrange(80, 400)])
    mtime = now - age * DAY
    atime = max(mtime, now - rng.uniform(0, 400) * DAY)
    stat = FileStat(1, rng.randrange(1 << 30), rng.randrange(1 << 34), mtime, atime, mtime,
                    rng.choice([0o100644, 0o100600, 0o100640]), 0, 0)  # fmt: skip
    root = ROOTS[kind]
    return Image(
        kind, root, path, rng.choice(REFS), None, stat, probe, "u", "g",
        rng.choice([None, None, None, f"{root}/team"]),
    )  # fmt: skip


def _paths(rng: random.Random) -> list[tuple[CacheKind, str]]:
    names = ["a", "b", "team/c", "team/d", "e.sif", ".imgcache-x.tmp", "f.part", "g", "h", "i"]
    return [(kind, f"{ROOTS[kind]}/{name}") for kind in ROOTS for name in names]


@pytest.mark.parametrize("seed", range(12))
def test_the_evaluator_judges_like_evaluate_through_changes_and_time(seed):
    rng = random.Random(seed)
    _, defaults = resolve_defaults(Settings())
    stale_days = rng.choice([90, 0, 1])
    now = NOW
    slots = _paths(rng)
    current: dict[str, Image] = {}
    for kind, path in rng.sample(slots, 12):
        current[path] = _image(rng, path, kind, now)

    def ordered() -> list[Image]:
        return [current[p] for p in sorted(current)]

    full = Evaluator(defaults, stale_days=stale_days)
    step = Evaluator(defaults, stale_days=stale_days)
    shown = {image.path: image for image in step.run(ordered(), now)}
    for _ in range(60):
        changes: dict[str, Image | None] = {}
        for _ in range(rng.randrange(0, 4)):
            kind, path = rng.choice(slots)
            if path in current and rng.random() < 0.3:
                del current[path]
                changes[path] = None
            else:
                current[path] = changes[path] = _image(rng, path, kind, now)
        now += rng.choice([0, 1, 59, 3600, DAY - 0.0005, DAY, 7 * DAY, 0.001])
        expected = evaluate(ordered(), defaults, now=now, stale_days=stale_days)
        # The whole list again, reusing what did not change ...
        assert full.run(ordered(), now) == expected
        # ... and only the changes, with what changed handed back.
        changed = step.apply(changes, now)
        assert changed is not None
        for path, image in changed.items():
            if image is None:
                shown.pop(path, None)
            else:
                shown[path] = image
        assert [shown[p] for p in sorted(shown)] == expected
        assert all(step.image(image.path) is shown[image.path] for image in expected)
    # A clock that goes back: apply declines, run still agrees.
    assert step.apply({}, now - 1) is None
    assert step.run(ordered(), now - DAY) == evaluate(
        ordered(), defaults, now=now - DAY, stale_days=stale_days
    )


def test_unchanged_images_come_back_as_the_same_objects():
    rng = random.Random(7)
    _, defaults = resolve_defaults(Settings())
    images = [_image(rng, f"/c/sif/x{i}", CacheKind.SINGULARITY, NOW) for i in range(50)]
    evaluator = Evaluator(defaults, stale_days=90)
    first = evaluator.run(images, NOW)
    again = evaluator.run(images, NOW + 1)
    assert all(a is b for a, b in zip(first, again, strict=True))
    # Without findings, an image is handed back as the scanner's record itself.
    plain = [i for i, out in zip(images, first, strict=True) if not out.findings]
    assert plain and all(any(i is out for out in first) for i in plain)
    assert evaluator.apply({}, NOW + 2) == {}


def test_a_path_seen_twice_is_judged_the_slow_way():
    rng = random.Random(3)
    _, defaults = resolve_defaults(Settings())
    image = _image(rng, "/c/sif/a", CacheKind.SINGULARITY, NOW)
    twin = dataclasses.replace(image, cache=CacheKind.ENROOT, root="/c")
    evaluator = Evaluator(defaults, stale_days=90)
    assert evaluator.run([image, twin], NOW) == evaluate(
        [image, twin], defaults, now=NOW, stale_days=90
    )
    assert evaluator.apply({}, NOW) is None


def test_shared_findings_are_plain_findings():
    rng = random.Random(11)
    _, defaults = resolve_defaults(Settings())
    images = [_image(rng, f"/c/enroot/x{i}.sqsh", CacheKind.ENROOT, NOW) for i in range(200)]
    for image in evaluate(images, defaults, now=NOW, stale_days=90):
        for f in image.findings:
            assert type(f) is Finding
            assert f == Finding(f.code, f.reason, f.advice)
            assert re.fullmatch(r"[a-z-]+", f.code)
