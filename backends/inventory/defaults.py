"""The default image of each environment, and whether each cache holds it.

Default images change with every Determined release, so they are data: the
profiles shipped in `data/profiles.toml`, one per generation named in the
image-cache pages, with master.yaml's `task_container_defaults.image` and the
config's own `[defaults]` entries laid over the chosen profile.

A resource pool of master.yaml whose own `task_container_defaults.image` names another
image than the cluster's for an environment adds a default of its own (`DefaultImage.pool`):
jobs in that pool start from it, so it counts as a default everywhere (presence, findings,
the pull of the missing ones).
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from imgcache.backends.config import ENVIRONMENTS, ConfigError, Settings
from imgcache.backends.inventory import caches, refs
from imgcache.backends.inventory.model import CacheKind, Image

#: How each environment is named on screen.
ENVIRONMENT_TITLES = {"cpu": "CPU", "cuda": "NVIDIA (CUDA)", "rocm": "AMD (ROCm)"}
#: Prefixes Determined accepts for a default that is a file rather than a reference.
PATH_PREFIXES = ("oci-archive:", "docker-archive:")


@dataclass(frozen=True, slots=True)
class Profile:
    """One generation of default images."""

    name: str
    title: str
    source: str
    order: int
    images: Mapping[str, str]


@cache
def load_profiles() -> dict[str, Profile]:
    """The shipped profiles by name, newest first."""
    text = resources.files("imgcache.backends").joinpath("data/profiles.toml").read_text("utf-8")
    data = tomllib.loads(text)
    profiles = [
        Profile(
            name=name,
            title=entry["title"],
            source=entry["source"],
            order=int(entry["order"]),
            images={env: entry[env] for env in ENVIRONMENTS if env in entry},
        )
        for name, entry in data["profiles"].items()
    ]
    profiles.sort(key=lambda p: -p.order)
    return {p.name: p for p in profiles}


def choose_profile(settings: Settings) -> Profile:
    """The profile the config names, else the newest one shipped."""
    profiles = load_profiles()
    if settings.profile is None:
        return next(iter(profiles.values()))
    try:
        return profiles[settings.profile]
    except KeyError:
        names = ", ".join(profiles)
        raise ConfigError(
            f"unknown defaults profile {settings.profile!r} (known: {names})"
        ) from None


@dataclass(frozen=True, slots=True)
class DefaultImage:
    """The default image of one environment."""

    env: str
    value: str
    """As written in the profile or config: a reference, or a file path."""
    origin: str
    ref: refs.Reference | None
    """The parsed reference; None when the default is a file path."""
    file: str | None
    """The file a path default names (without `oci-archive:`); None for references."""
    error: str | None = None
    """Why the value is neither a reference nor a path."""
    pool: str | None = None
    """The resource pool whose own default this is; None for the cluster's."""

    @property
    def title(self) -> str:
        """The environment's name on screen."""
        return ENVIRONMENT_TITLES[self.env]

    @property
    def label(self) -> str:
        """What a job pulling it is called: `cuda default`, `pool gpu cuda default`."""
        return f"pool {self.pool} {self.env} default" if self.pool else f"{self.env} default"


def _default(env: str, value: str, origin: str, pool: str | None = None) -> DefaultImage:
    for prefix in PATH_PREFIXES:
        if value.startswith(prefix):
            return DefaultImage(env, value, origin, None, value[len(prefix) :], pool=pool)
    if value.startswith("/"):
        return DefaultImage(env, value, origin, None, value, pool=pool)
    try:
        return DefaultImage(env, value, origin, refs.parse(value), None, pool=pool)
    except refs.RefError as exc:
        return DefaultImage(env, value, origin, None, None, str(exc), pool=pool)


def resolve_defaults(
    settings: Settings, *, pools: bool = False
) -> tuple[Profile, list[DefaultImage]]:
    """The profile in use and the default image of each environment it or the config names;
    with `pools`, followed by the pools' own (`pool_overrides`)."""
    profile = choose_profile(settings)
    result = []
    for env in ENVIRONMENTS:
        if env in settings.default_images:
            value = settings.default_images[env]
            origin = settings.default_origins.get(env, "config")
        elif env in profile.images:
            value = profile.images[env]
            origin = f"profile {profile.name}"
        else:
            continue
        result.append(_default(env, value, origin))
    if pools:
        result += pool_overrides(settings, result)
    return profile, result


def pool_overrides(settings: Settings, cluster: Sequence[DefaultImage]) -> list[DefaultImage]:
    """Each pool's default images that differ from the cluster's `cluster`, pool by pool.

    An environment a pool says nothing about, or sets to the cluster's own image, keeps
    the cluster's default: Determined lays a pool's fields over the cluster's.
    """
    theirs = {d.env: d.value for d in cluster}
    result = []
    for pool in settings.pools:
        for env in ENVIRONMENTS:
            value = pool.images.get(env)
            if value is not None and value != theirs.get(env):
                result.append(_default(env, value, pool.origin, pool.name))
    return result


def pool_defaults(settings: Settings, name: str) -> list[DefaultImage] | None:
    """What jobs in pool `name` start from, per environment: the pool's own image, else
    the cluster's; None when master.yaml has no such pool."""
    if name not in {pool.name for pool in settings.pools}:
        return None
    _, cluster = resolve_defaults(settings)
    own = {d.env: d for d in pool_overrides(settings, cluster) if d.pool == name}
    merged = [own.pop(d.env, d) for d in cluster]
    return sorted([*merged, *own.values()], key=lambda d: ENVIRONMENTS.index(d.env))


def default_keys(defaults: Iterable[DefaultImage]) -> set[str]:
    """Normalised references of the defaults, for quick membership tests."""
    return {str(d.ref.normalized()) for d in defaults if d.ref is not None}


@dataclass(frozen=True, slots=True)
class Presence:
    """Whether one cache holds one default image, and where."""

    default: DefaultImage
    cache_kind: CacheKind
    cache_root: str
    state: str
    """present, missing, broken (there but corrupt, incomplete, or no image at all: a
    FIFO, an empty or text file, ...), elsewhere (the image
    is there under a name the runtime will not look up), or n/a (cannot be stored here)."""
    path: str | None
    """The file found, or where it would go."""
    detail: str = ""

    @property
    def cached(self) -> bool:
        """True when the runtime will find a usable file."""
        return self.state == "present"


def presence(
    defaults: Sequence[DefaultImage],
    roots: Sequence[tuple[CacheKind, str]],
    images: Sequence[Image],
) -> list[Presence]:
    """For each default and each cache, whether the cache holds it."""
    plan = PresencePlan(defaults, roots)
    by_path, by_ref = plan.index(images)
    return plan.result(by_path.get, lambda root, ref: by_ref.get((root, ref), []))


class PresencePlan:
    """Where each default would be in each cache, and how to tell whether it is there.

    `presence` in two steps, so that a caller that can look images up by path
    and by reference already (the catalog's findings evaluator) need not index
    every image for a handful of look-ups: `result` asks only for the paths
    and references the defaults can be found under.
    """

    def __init__(
        self, defaults: Sequence[DefaultImage], roots: Sequence[tuple[CacheKind, str]]
    ) -> None:
        self.defaults = tuple(defaults)
        self.roots = tuple(roots)
        self._expected: dict[tuple[int, int], list[str] | refs.RefError] = {}
        self.wanted_paths: set[str] = set()
        """Every path `result` may look up."""
        self.wanted_refs: set[str] = set()
        """Every `Image.ref` `result` may look up (with any root)."""
        for i, default in enumerate(self.defaults):
            if default.ref is None:
                if default.file is not None:
                    self.wanted_paths.add(os.path.abspath(default.file))
                continue
            for j, (kind, root) in enumerate(self.roots):
                try:
                    paths = caches.expected_paths(kind, root, default.ref)
                except refs.RefError as exc:
                    self._expected[i, j] = exc
                    continue
                self._expected[i, j] = paths
                self.wanted_paths.update(paths)
                # Where this raises, `result` raises too if it gets that far: let it.
                with contextlib.suppress(refs.RefError):
                    self.wanted_refs.add(caches.ref_string(kind, default.ref))

    def index(
        self, images: Iterable[Image]
    ) -> tuple[dict[str, Image], dict[tuple[str, str], list[Image]]]:
        """By path and by (root, ref), in one pass: only the images `result` may ask for."""
        wanted_paths, wanted_refs = self.wanted_paths, self.wanted_refs
        by_path: dict[str, Image] = {}
        by_ref: dict[tuple[str, str], list[Image]] = {}
        for image in images:
            ref = image.ref
            if ref is not None and ref in wanted_refs:
                by_ref.setdefault((image.root, ref), []).append(image)
            path = image.path
            if path in wanted_paths:
                by_path[path] = image
        return by_path, by_ref

    def result(
        self,
        image_at: Callable[[str], Image | None],
        copies: Callable[[str, str], Sequence[Image]],
    ) -> list[Presence]:
        """Each default in each cache; `image_at(path)` and `copies(root, ref)` (in
        inventory order) find the images."""
        result = []
        for i, default in enumerate(self.defaults):
            for j, (kind, root) in enumerate(self.roots):
                expected = self._expected.get((i, j))
                result.append(_one(default, kind, root, image_at, copies, expected))
        return result


def _usable(image: Image) -> bool:
    """True when the runtime can start the file: not broken, not half written,
    and an image at all (not a FIFO, an empty or text file, an old squashfs)."""
    probe = image.probe
    return not probe.corrupt and probe.not_image is None and "incomplete" not in image.codes


def _why_broken(image: Image) -> str:
    """Why a file at a default's path is no usable image, for the `broken` state."""
    probe = image.probe
    if probe.error is not None:
        return probe.error
    if probe.not_image is not None:
        return probe.note or probe.not_image
    return "incomplete"


def _one(
    default: DefaultImage,
    kind: CacheKind,
    root: str,
    image_at: Callable[[str], Image | None],
    copies: Callable[[str, str], Sequence[Image]],
    expected: list[str] | refs.RefError | None,
) -> Presence:
    if default.ref is None:
        if default.file is None:
            return Presence(default, kind, root, "n/a", None, default.error or "")
        # A default that is a file path is only "in" the cache that contains it.
        inside = os.path.commonpath([root, os.path.abspath(default.file)]) == root
        if not inside:
            return Presence(default, kind, root, "n/a", default.file, "a file outside this cache")
        image = image_at(os.path.abspath(default.file))
        if image is None:
            return Presence(default, kind, root, "missing", default.file)
        if _usable(image):
            return Presence(default, kind, root, "present", image.path)
        return Presence(default, kind, root, "broken", image.path, _why_broken(image))

    if isinstance(expected, refs.RefError):
        return Presence(default, kind, root, "n/a", None, str(expected))
    assert expected is not None  # PresencePlan works it out for every ref default
    candidates = expected
    if kind is CacheKind.PODMAN:
        # Archives carry their reference inside; any file name will do.
        found = copies(root, caches.ref_string(kind, default.ref))
        usable = [image for image in found if _usable(image)]
        if usable:
            return Presence(default, kind, root, "present", usable[0].path)
        if found:
            return Presence(default, kind, root, "broken", found[0].path)
        return Presence(default, kind, root, "missing", candidates[0])

    for path in candidates:
        image = image_at(path)
        if image is not None:
            if _usable(image):
                return Presence(default, kind, root, "present", path)
            return Presence(default, kind, root, "broken", path, _why_broken(image))
    others = copies(root, caches.ref_string(kind, default.ref))
    if others:
        wanted = os.path.relpath(candidates[0], root)
        return Presence(
            default,
            kind,
            root,
            "elsewhere",
            others[0].path,
            f"stored as {others[0].rel}; the runtime looks for {wanted}",
        )
    return Presence(default, kind, root, "missing", candidates[0])
