"""Tests for inventory.refs (the reference grammar, normalisation) and inventory.naming."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from imgcache.backends.inventory import caches
from imgcache.backends.inventory.model import CacheKind
from imgcache.backends.inventory.naming import (
    enroot_filename,
    enroot_ref_from_filename,
    enroot_ref_string,
    path_in_root,
    podman_filename,
    singularity_ref_from_relpath,
    singularity_relpath,
)
from imgcache.backends.inventory.refs import Reference, RefError, normalize, parse

SHA = "sha256:" + "0123456789abcdef" * 4
SHA512 = "sha512:" + "fedcba9876543210" * 8
DETERMINED = "determinedai/environments:cuda-11.3-pytorch-1.10-tf-2.8-gpu-096d730"

# An independent spelling of distribution/reference's ReferenceRegexp (regexp.go),
# so a grammar slip in refs.py cannot hide behind a shared constant.
_PATH_COMP = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOM_COMP = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOM_COMP}(?:\.{_DOM_COMP})*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMP}(?:/{_PATH_COMP})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
REFERENCE_RE = re.compile(rf"{_NAME}(?::{_TAG})?(?:@{_DIGEST})?")

FAST = settings(max_examples=150, deadline=None)


# --- table: what parses, and into what ------------------------------------------

PARSES = [
    ("ubuntu", None, "ubuntu", None, None),
    ("ubuntu:22.04", None, "ubuntu", "22.04", None),
    ("library/ubuntu", None, "library/ubuntu", None, None),
    (DETERMINED, None, "determinedai/environments", DETERMINED.split(":")[1], None),
    ("nvcr.io/nvidia/pytorch:25.09-py3", "nvcr.io", "nvidia/pytorch", "25.09-py3", None),
    ("registry.example.com:5000/team/app:v1", "registry.example.com:5000", "team/app", "v1", None),
    ("localhost/app", "localhost", "app", None, None),
    ("localhost:5000/app:dev", "localhost:5000", "app", "dev", None),
    # No '/': docker reads a single component as a path, so this is image
    # "localhost" with tag "5000", not a registry.
    ("localhost:5000", None, "localhost", "5000", None),
    ("nvcr.io", None, "nvcr.io", None, None),
    ("[::1]:5000/app", "[::1]:5000", "app", None, None),
    ("[2001:db8::1]/a/b", "[2001:db8::1]", "a/b", None, None),
    ("127.0.0.1:5000/a", "127.0.0.1:5000", "a", None, None),
    ("example:5000/a", "example:5000", "a", None, None),
    # An uppercase first component is a registry (splitDockerDomain).
    ("Registry/app", "Registry", "app", None, None),
    ("ghcr.io/org/sub/deep/repo:1", "ghcr.io", "org/sub/deep/repo", "1", None),
    ("a/b/c/d", None, "a/b/c/d", None, None),
    ("my__repo/a--b---c/x.y_z", None, "my__repo/a--b---c/x.y_z", None, None),
    (f"ubuntu@{SHA}", None, "ubuntu", None, SHA),
    (f"ubuntu:22.04@{SHA}", None, "ubuntu", "22.04", SHA),
    (f"quay.io/a/b@{SHA512}", "quay.io", "a/b", None, SHA512),
    ("ubuntu:_x", None, "ubuntu", "_x", None),
    ("ubuntu:" + "T" * 128, None, "ubuntu", "T" * 128, None),
]


@pytest.mark.parametrize(("text", "registry", "path", "tag", "digest"), PARSES)
def test_parse_table(text, registry, path, tag, digest):
    ref = parse(text)
    assert ref == Reference(registry, path, tag, digest)
    assert str(ref) == text
    assert REFERENCE_RE.fullmatch(text)


NORMALIZED = [
    ("ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest", "docker.io/library/ubuntu"),
    ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04", "docker.io/library/ubuntu"),
    (
        "docker.io/ubuntu",
        "docker.io/library/ubuntu:latest",
        "ubuntu:latest",
        "docker.io/library/ubuntu",
    ),
    (
        "index.docker.io/library/ubuntu",
        "docker.io/library/ubuntu:latest",
        "ubuntu:latest",
        "docker.io/library/ubuntu",
    ),
    (
        DETERMINED,
        "docker.io/" + DETERMINED,
        DETERMINED,
        "docker.io/determinedai/environments",
    ),
    (
        "nvcr.io/nvidia/pytorch:25.09-py3",
        "nvcr.io/nvidia/pytorch:25.09-py3",
        "nvcr.io/nvidia/pytorch:25.09-py3",
        "nvcr.io/nvidia/pytorch",
    ),
    # library/ is not added outside docker.io, and no tag is added to a digest.
    ("localhost/app", "localhost/app:latest", "localhost/app:latest", "localhost/app"),
    (
        f"ubuntu@{SHA}",
        f"docker.io/library/ubuntu@{SHA}",
        f"ubuntu@{SHA}",
        "docker.io/library/ubuntu",
    ),
    (
        f"ubuntu:22.04@{SHA}",
        f"docker.io/library/ubuntu:22.04@{SHA}",
        f"ubuntu:22.04@{SHA}",
        "docker.io/library/ubuntu",
    ),
    # library/ with a nested path stays in the familiar form (normalize.go does the same).
    (
        "library/a/b",
        "docker.io/library/a/b:latest",
        "library/a/b:latest",
        "docker.io/library/a/b",
    ),
]


@pytest.mark.parametrize(("text", "full", "familiar", "repository"), NORMALIZED)
def test_normalization_table(text, full, familiar, repository):
    ref = parse(text)
    assert normalize(text) == full
    assert str(ref.normalized()) == full
    assert ref.familiar() == familiar
    assert ref.repository == repository
    assert str(ref) == text  # parse() itself does not normalise


# --- table: every refusal, with the words a user reads ---------------------------

REFUSALS = [
    ("", ["empty"]),
    (" ubuntu", ["spaces", "start or end"]),
    ("ubuntu\n", ["line breaks"]),
    ("Ubuntu", ["repository name must be lowercase"]),
    ("nvcr.io/NVIDIA/pytorch", ["repository name must be lowercase"]),
    ("ubuntu:", ["':' is not followed by a tag"]),
    ("ubuntu:x y", ["tag 'x y' has a character a tag cannot hold", "' '", "at most 128"]),
    ("ubuntu:.x", ["tag '.x' starts with '.'"]),
    ("ubuntu:-x", ["must start with a letter, digit or '_'"]),
    ("ubuntu:" + "a" * 129, ["129 characters long", "at most 128"]),
    ("ubuntu@", ["'@' is not followed by a digest"]),
    ("ubuntu@sha256", ["has no ':'", "algorithm:hex"]),
    ("ubuntu@1sha:" + "a" * 64, ["digest algorithm '1sha' is not valid"]),
    ("ubuntu@sha256:" + "g" * 64, ["not a hex digit", "'g'"]),
    ("ubuntu@sha256:abc", ["only 3 hex digits", "at least 32"]),
    ("ubuntu@sha256:" + "a" * 63, ["exactly 64 hex digits", "has 63"]),
    ("ubuntu@sha256:" + "A" * 64, ["lowercase hex"]),
    ("ubuntu@md5:" + "a" * 32, ["'md5' is not supported"]),
    (f"a@{SHA}@{SHA}", ["more than one '@'"]),
    (":tag", ["no repository name"]),
    (f"@{SHA}", ["no repository name"]),
    ("/ubuntu", ["starts with '/'"]),
    ("ubuntu/", ["ends with '/'"]),
    ("nvcr.io/", ["is empty"]),
    ("foo//bar", ["empty component", "'//'"]),
    ("a" * 256, ["256 characters long", "at most 255"]),
    ("nvcr.io/" + "a" * 248, ["256 characters long"]),
    ("foo!bar", ["'foo!bar' has a character a repository path cannot hold", "'!'"]),
    ("föo", ["cannot hold", "'ö'"]),
    ("foo/-bar", ["must start and end with a lowercase letter or digit"]),
    ("foo/bar_", ["must start and end"]),
    ("foo..bar", ["joins its parts with '..'"]),
    ("foo___bar", ["'___'"]),
    ("foo._bar", ["'._'"]),
    ("foo/bar:1:2", ["has a ':' inside it"]),
    ("exa_mple.com/foo", ["registry host 'exa_mple.com'", "'_'"]),
    ("example.com:http/foo", ["registry port 'http' must be a number"]),
    ("example..com/foo", ["empty part between dots"]),
    ("-example.com/foo", ["must not start or end with '-'"]),
    (":5000/foo", ["no host name before the port"]),
    ("[::1/foo", ["never closes"]),
    ("[zz::1]:5000/foo", ["is not an IPv6 address"]),
    ("[::1]x/foo", ["only ':<port number>' may follow"]),
    ("[::1]:5000", ["no repository path follows"]),
    ("[0]/app", ["'[0]' is not an IPv6 address", "no ':'"]),
    ("0123456789abcdef" * 4, ["image ID"]),
    ("docker://ubuntu:22.04", ["transport (docker://)"]),
    ("nvcr.io#nvidia/pytorch:25.09-py3", ["'#'", "registry/image"]),
]


@pytest.mark.parametrize(("text", "words"), REFUSALS, ids=[t[:30] or "empty" for t, _ in REFUSALS])
def test_refusals_say_why(text, words):
    with pytest.raises(RefError) as info:
        parse(text)
    for word in words:
        assert word in str(info.value)


def test_ref_error_is_a_value_error():
    assert issubclass(RefError, ValueError)


def test_construction_validates():
    with pytest.raises(RefError, match="cannot be a registry"):
        Reference("foo", "bar")
    with pytest.raises(RefError, match="repository path is empty"):
        Reference(None, "")
    with pytest.raises(RefError, match="tag is empty"):
        Reference(None, "ubuntu", "")
    with pytest.raises(RefError, match="digest is empty"):
        Reference(None, "ubuntu", None, "")
    with pytest.raises(RefError, match="registry name is empty"):
        Reference("", "ubuntu")
    with pytest.raises(RefError, match="must start and end"):
        Reference(None, "../etc")
    with pytest.raises(RefError, match="cannot hold"):
        Reference(None, "a/b c")


def test_normalized_returns_self_when_already_normal():
    ref = parse("docker.io/library/ubuntu:22.04")
    assert ref.normalized() is ref


# --- cache naming ------------------------------------------------------------------


def test_singularity_determined_layout():
    ref = parse(DETERMINED)
    assert singularity_relpath(ref) == DETERMINED
    assert singularity_ref_from_relpath(DETERMINED) == ref
    assert singularity_ref_from_relpath(DETERMINED + ".sif") == ref
    assert singularity_ref_from_relpath("ubuntu:22.04.sif") == singularity_ref_from_relpath(
        "ubuntu:22.04"
    )


def test_singularity_keeps_registry_as_written():
    ref = parse("nvcr.io/nvidia/pytorch:25.09-py3")
    assert singularity_relpath(ref) == "nvcr.io/nvidia/pytorch:25.09-py3"
    assert singularity_ref_from_relpath("nvcr.io/nvidia/pytorch:25.09-py3.sif") == ref


@pytest.mark.parametrize(
    ("rel", "words"),
    [
        ("README.md", "lowercase"),
        ("foo bar.sif", "cannot hold"),
        (".imgcache-tmp.partial", "must start and end"),
        (".sif", "nothing before '.sif'"),
        ("a//b.sif", "empty component"),
    ],
)
def test_singularity_refuses_names_that_are_not_refs(rel, words):
    with pytest.raises(RefError, match=re.escape(words)):
        singularity_ref_from_relpath(rel)


def test_singularity_sif_suffix_is_ambiguous_by_design():
    # A tag ending in ".sif" cannot be told apart from the file suffix.
    assert singularity_ref_from_relpath("foo:v1.sif") == Reference(None, "foo", "v1")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # enroot >= 4.0 (src/docker.sh docker::import), checked against its own code.
        ("nvcr.io/nvidia/pytorch:25.09-py3", "nvidia+pytorch+25.09-py3.sqsh"),
        ("ubuntu", "ubuntu+latest.sqsh"),
        ("library/ubuntu", "ubuntu+latest.sqsh"),
        ("ubuntu:18.04", "ubuntu+18.04.sqsh"),
        ("docker.io/library/ubuntu:18.04", "ubuntu+18.04.sqsh"),
        ("docker.io/library/a/b", "a+b+latest.sqsh"),
        ("determinedai/environments", "determinedai+environments+latest.sqsh"),
        ("nvcr.io/library/x:1", "library+x+1.sqsh"),
        ("localhost:5000/a/b/c:t", "a+b+c+t.sqsh"),
        (f"ubuntu@{SHA}", f"ubuntu+{SHA}.sqsh"),
        (f"ubuntu:22.04@{SHA}", f"ubuntu+{SHA}.sqsh"),
        (f"nvcr.io/nvidia/cuda@{SHA}", f"nvidia+cuda+{SHA}.sqsh"),
    ],
)
def test_enroot_filename(text, name):
    assert enroot_filename(parse(text)) == name


def test_enroot_round_trip_example():
    ref = enroot_ref_from_filename("nvidia+pytorch+25.09-py3.sqsh")
    assert ref == Reference(None, "nvidia/pytorch", "25.09-py3")
    assert enroot_ref_from_filename("ubuntu.sqsh") == Reference(None, "ubuntu")
    assert enroot_ref_from_filename("ubuntu+18.04.sqsh") == Reference(None, "ubuntu", "18.04")
    assert enroot_ref_from_filename(f"nvidia+cuda+{SHA}.sqsh") == Reference(
        None, "nvidia/cuda", None, SHA
    )


@pytest.mark.parametrize(
    ("name", "recorded"),
    [
        # What imgcache (and enroot >= 4.0) writes reads back as the reference pulled,
        # not as "determinedai:environments" (issue 17).
        ("determinedai+environments+latest.sqsh", "determinedai/environments:latest"),
        ("ubuntu+latest.sqsh", "ubuntu:latest"),
        (f"ubuntu+{SHA}.sqsh", f"ubuntu@{SHA}"),
        # Names already in caches: enroot 3's untagged name, enroot 4.1's for docker.io/library/.
        ("ubuntu.sqsh", "ubuntu:latest"),
        ("library+ubuntu+latest.sqsh", "ubuntu:latest"),
        ("nvidia+pytorch+25.09-py3.sqsh", "nvidia/pytorch:25.09-py3"),
    ],
)
def test_enroot_files_read_back_as_the_reference_pulled(name, recorded):
    assert enroot_ref_string(enroot_ref_from_filename(name)) == recorded


@pytest.mark.parametrize(
    "text",
    ["ubuntu", "docker.io/library/ubuntu:latest", "determinedai/environments", f"x/y@{SHA}"],
)
def test_a_pulled_enroot_file_records_the_reference_it_was_pulled_as(text):
    ref = parse(text)
    assert enroot_ref_string(enroot_ref_from_filename(enroot_filename(ref))) == enroot_ref_string(
        ref
    )


def test_enroot_names_only_sha256_digests():
    with pytest.raises(RefError, match="only sha256"):
        enroot_filename(parse(f"ubuntu@{SHA512}"))


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("ubuntu.sif", "does not end in '.sqsh'"),
        (".sqsh", "nothing before '.sqsh'"),
        ("a++b.sqsh", "empty part"),
        ("+a.sqsh", "empty part"),
        ("a/b+c.sqsh", "'/'"),
        ("Ubuntu.sqsh", "lowercase"),
        ("ubuntu+x y.sqsh", "tag cannot hold"),
        ("ubuntu+.hidden.sqsh", "starts with '.'"),
    ],
)
def test_enroot_refuses_bad_names(name, words):
    with pytest.raises(RefError, match=re.escape(words)):
        enroot_ref_from_filename(name)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ubuntu", "ubuntu+latest.tar"),
        ("nvcr.io/nvidia/pytorch:25.09-py3", "nvcr.io+nvidia+pytorch+25.09-py3.tar"),
        ("docker.io/library/redis:7", "redis+7.tar"),
        ("localhost:5000/app", "localhost+5000+app+latest.tar"),
        (f"ubuntu@{SHA}", f"ubuntu+{SHA.replace(':', '+')}.tar"),
    ],
)
def test_podman_filename(text, name):
    assert podman_filename(parse(text)) == name


# --- path_in_root --------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A cache root with a symlink that escapes it and one that stays inside."""
    base = tmp_path_factory.mktemp("refs")
    cache = base / "cache"
    outside = base / "outside"
    (cache / "sub").mkdir(parents=True)
    outside.mkdir()
    (cache / "escape").symlink_to(outside)
    (cache / "inside").symlink_to(cache / "sub")
    return str(cache)


def _inside(root: str, path: str) -> bool:
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return os.path.commonpath([real_root, real]) == real_root and real != real_root


def test_path_in_root_accepts_names_inside(root):
    assert path_in_root(root, "ubuntu:22.04") == os.path.join(root, "ubuntu:22.04")
    assert path_in_root(root, "a/b/c.sif") == os.path.join(root, "a", "b", "c.sif")
    assert path_in_root(root, "a/../b") == os.path.join(root, "b")
    assert path_in_root(root, "inside/x") == os.path.join(root, "inside", "x")


@pytest.mark.parametrize(
    ("rel", "words"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute path"),
        ("a\0b", "NUL"),
        ("..", "outside the cache root"),
        ("../x", "outside the cache root"),
        ("a/../../x", "outside the cache root"),
        ("escape/x", "outside the cache root"),
        ("escape", "outside the cache root"),
        (".", "cache root"),
        ("a/..", "itself"),
    ],
)
def test_path_in_root_refuses(root, rel, words):
    with pytest.raises(RefError, match=re.escape(words)):
        path_in_root(root, rel)


def test_path_in_root_through_symlinked_root(tmp_path: Path):
    # Shared caches are often reached through a symlink (/shared/cache -> /lustre/...);
    # the answer keeps the root as given rather than the resolved one.
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert path_in_root(str(link), "x.sif") == str(link / "x.sif")


# --- generated references ------------------------------------------------------------

_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_MIXED = _LOWER + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

alnum = st.text(_LOWER, min_size=1, max_size=6)
separator = st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def path_components(draw: st.DrawFn) -> str:
    parts = [draw(alnum)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(separator), draw(alnum)]
    return "".join(parts)


@st.composite
def domain_components(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(_MIXED))
    inner = draw(st.text(_MIXED + "-", max_size=6))
    return draw(st.sampled_from(_MIXED)) + inner + draw(st.sampled_from(_MIXED))


ports = st.integers(1, 65535).map(lambda p: f":{p}")
ipv6 = st.sampled_from(["[::1]", "[2001:db8::1]", "[fe80::1:2]", "[0:0:0:0:0:0:0:1]"])

registries = st.one_of(
    # Dotted names, with or without a port.
    st.tuples(st.lists(domain_components(), min_size=2, max_size=3), st.just("") | ports).map(
        lambda t: ".".join(t[0]) + t[1]
    ),
    # A single word is a registry only with a port or an uppercase letter.
    st.tuples(domain_components(), ports).map("".join),
    domain_components().filter(lambda s: s.lower() != s),
    st.just("localhost") | ports.map(lambda p: "localhost" + p),
    st.tuples(ipv6, st.just("") | ports).map("".join),
)
tags = st.from_regex(
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}"), fullmatch=True
) | st.from_regex(re.compile(_TAG), fullmatch=True)
digests = st.one_of(
    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h),
    st.text("0123456789abcdef", min_size=128, max_size=128).map(lambda h: "sha512:" + h),
)


@st.composite
def references(
    draw: st.DrawFn,
    registry: st.SearchStrategy[str | None] | None = None,
    tag: st.SearchStrategy[str | None] | None = None,
    digest: st.SearchStrategy[str | None] | None = None,
) -> Reference:
    reg = draw(registry if registry is not None else st.none() | registries)
    components = draw(st.lists(path_components(), min_size=1, max_size=4))
    if reg is None and len(components) > 1:
        # Without a registry, docker would read such a first component as one.
        assume(components[0] != "localhost" and "." not in components[0])
    path = "/".join(components)
    name = path if reg is None else f"{reg}/{path}"
    assume(len(name) <= 255)
    t = draw(tag if tag is not None else st.none() | tags)
    d = draw(digest if digest is not None else st.none() | digests)
    assume(not (reg is None and t is None and d is None and re.fullmatch("[a-f0-9]{64}", path)))
    return Reference(reg, path, t, d)


@FAST
@given(references())
def test_generated_refs_round_trip(ref):
    text = str(ref)
    assert REFERENCE_RE.fullmatch(text)
    assert parse(text) == ref


@FAST
@given(references())
def test_normalized_is_idempotent(ref):
    n = ref.normalized()
    assert n.normalized() == n
    assert n.registry is not None
    assert n.tag is not None or n.digest is not None
    assert parse(str(n)) == n
    assert normalize(str(ref)) == str(n)
    assert ref.repository == f"{n.registry}/{n.path}"
    # The familiar form means the same image as the full one.
    assert normalize(ref.familiar()) == str(n)


@FAST
@given(references())
def test_singularity_round_trip(ref):
    rel = singularity_relpath(ref)
    # A ref whose text ends in ".sif" is ambiguous by design (see the test above).
    assume(not rel.endswith(".sif"))
    assert singularity_ref_from_relpath(rel) == ref
    assert singularity_ref_from_relpath(rel + ".sif") == ref


@FAST
@given(references(tag=st.none() | tags, digest=st.none()))
def test_enroot_round_trip(ref):
    back = enroot_ref_from_filename(enroot_filename(ref))
    assert back.registry is None
    hub = ref.normalized().registry == "docker.io"
    path = ref.normalized().path.removeprefix("library/") if hub else ref.path
    assert (back.path, back.tag, back.digest) == (path, ref.tag or "latest", None)
    assert enroot_ref_string(back) == enroot_ref_string(ref)


@FAST
@given(references())
def test_podman_filename_is_one_plain_name(ref):
    name = podman_filename(ref)
    assert name.endswith(".tar")
    assert "/" not in name
    assert ":" not in name
    assert "@" not in name


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ref=references())
def test_every_generated_name_stays_in_root(root, ref):
    paths = [path_in_root(root, singularity_relpath(ref)), path_in_root(root, podman_filename(ref))]
    if ref.digest is None or ref.digest.startswith("sha256:"):
        paths.append(path_in_root(root, enroot_filename(ref)))
    for path in paths:
        assert _inside(root, path)
        assert os.path.commonpath([root, path]) == root


# --- arbitrary text -------------------------------------------------------------------

grammar_soup = st.text(alphabet="abcAZ09._-/:@[]+# \n", max_size=40)
near_refs = st.builds(
    lambda ref, cut, junk: str(ref)[:cut] + junk + str(ref)[cut:],
    references(),
    st.integers(0, 80),
    st.text(alphabet=":/@._-A[]+ ", max_size=2),
)


@FAST
@given(st.one_of(st.text(), grammar_soup, near_refs))
def test_parse_returns_reference_or_ref_error(text):
    try:
        ref = parse(text)
    except RefError as exc:
        assert str(exc)
        return
    assert isinstance(ref, Reference)
    assert str(ref) == text
    assert REFERENCE_RE.fullmatch(text)


rel_texts = st.one_of(
    st.text(),
    st.builds(
        lambda head, tail: head + tail,
        st.sampled_from(["..", "../", "/", "/etc/", "escape/", "inside/../..", "./", "a/../", ""]),
        st.text(alphabet="ab./\0", max_size=12),
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rel=rel_texts)
def test_path_in_root_never_escapes(root, rel):
    try:
        path = path_in_root(root, rel)
    except RefError:
        return
    assert _inside(root, path)
    assert os.path.commonpath([root, path]) == root


# --- any text the grammar accepts, all the way to a file in a cache -----------------

# Mostly texts that parse (a reference, or one with a few grammar characters put in).
accepted_texts = st.one_of(near_refs, references().map(str), grammar_soup)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=accepted_texts)
def test_any_text_the_grammar_accepts_maps_inside_the_root_and_outside_imgcaches_dirs(root, text):
    try:
        ref = parse(text)
    except RefError:
        return
    for kind in CacheKind:
        try:
            paths = caches.expected_paths(kind, root, ref)
        except RefError:
            continue  # refused: a digest enroot cannot name, a link out of the root
        for path in paths:
            rel = os.path.relpath(path, root)
            assert _inside(root, path), (text, kind, path)
            assert not rel.startswith(".."), (text, kind, rel)
            # Never the trash or the lock directory: a pull cannot write there.
            assert not caches.reserved(rel), (text, kind, rel)
