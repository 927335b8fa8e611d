"""Why a pull failed, cause first: a registry tool's error made into one line for the admin.

containers/image (inside skopeo and podman) nests its errors outermost first, so the
reason comes last on a long line. With a mirror it is worse: it tries each mirror,
then the registry itself, and reports the registry's failure last:

    initializing source docker://imgcache-test/meta:nope: (Mirrors also failed:
    [127.0.0.1:5000/imgcache-test/meta:nope: reading manifest nope in
    127.0.0.1:5000/imgcache-test/meta: manifest unknown: manifest unknown]):
    registry-1.docker.io/imgcache-test/meta:nope: pinging container registry
    registry-1.docker.io: Get "https://registry-1.docker.io/v2/": dial tcp: lookup
    registry-1.docker.io: no such host

When the registry itself is out of reach (the usual reason to have a mirror), the
mirror's answer is the cause. `registry_failure` says it first:

    manifest unknown: the mirror 127.0.0.1:5000 does not have imgcache-test/meta:nope;
    the registry itself, registry-1.docker.io, could not be reached (no such host)

A registry that answers in plain http gets the registries.conf setting that allows
it. Anything else keeps the tool's words, the last reason moved to the front. The
job log keeps the tool's whole output.
"""

from __future__ import annotations

import os
import re

#: What a registry answers when it was reached and said no.
_ANSWERS = (
    "manifest unknown",
    "name unknown",
    "unauthorized",
    "authentication required",
    "denied",
    "toomanyrequests",
)
#: What the network says when no registry answered at all.
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "connection reset",
    "eof",
)
_HTTP = "server gave HTTP response to HTTPS client"
#: What each answer means, said of a mirror: "the mirror M <verb> NAME".
_VERBS = {
    "manifest unknown": "does not have",
    "name unknown": "does not have",
    "toomanyrequests": "limits the rate of pulls of",
}
_SOURCE = re.compile(
    r"^(?:Error: )?(?:initializing source|Error parsing image name) \"?docker://\S*?: "
)
_MIRRORS = re.compile(r"\(Mirrors also failed: \[(.*)\]\): (\S+): (.*)$", re.S)
_MIRROR_SEP = re.compile(r"\]\s*(?:\\n)?\s*\[")
_PINGED = re.compile(r"(?:pinging container registry |https?://)([^/\s\":]+(?::\d+)?)")
UNREACHABLE_HINT = " (is the registry reachable?)"


def _has(text: str, phrases: tuple[str, ...]) -> str | None:
    lower = text.lower()
    return next((p for p in phrases if p in lower), None)


def cause_first(text: str, phrases: tuple[str, ...]) -> str | None:
    """`text` ("context: context: reason") with its trailing reasons (the `: `-separated
    parts that hold one of `phrases`, each said once) moved to the front; None when
    it does not end in one."""
    parts = text.split(": ")
    k = len(parts)
    while k > 0 and _has(parts[k - 1], phrases):
        k -= 1
    if k == len(parts):
        return None
    cause = ": ".join(dict.fromkeys(parts[k:]))
    context = ": ".join(parts[:k])
    return f"{cause}: {context}" if context else cause


def _host(ref: str) -> str:
    return ref.partition("/")[0]


def _http_only(attempts: list[tuple[str, str]]) -> str | None:
    for ref, err in attempts:
        if _HTTP.lower() in err.lower():
            found = _PINGED.search(err)
            host = found.group(1) if found else _host(ref) or "the registry"
            conf = os.environ.get("CONTAINERS_REGISTRIES_CONF")
            return (
                f"{host} answers in plain http, not https (http: {_HTTP}); to pull from it "
                "anyway, set insecure = true in its [[registry]] in registries.conf"
                + (f" ({conf})" if conf else "")
            )
    return None


def _attempts(text: str) -> tuple[list[tuple[str, str]], tuple[str, str]] | None:
    """(mirrors, the registry itself), each (ref, error), when skopeo tried mirrors."""
    found = _MIRRORS.search(text)
    if found is None:
        return None
    mirrors = []
    for part in _MIRROR_SEP.split(found.group(1)):
        ref, _, err = part.partition(": ")
        mirrors.append((ref, err))
    return mirrors, (found.group(2), found.group(3))


def registry_failure(line: str) -> str:
    """One line saying why a pull from a registry failed, the cause first (see the module)."""
    text = _SOURCE.sub("", line.strip(), count=1)
    tried = _attempts(text)
    mirrors, upstream = tried if tried is not None else ([], ("", text))
    http = _http_only([*mirrors, upstream])
    if http is not None:
        return http
    answered = [(ref, err, _has(err, _ANSWERS)) for ref, err in mirrors]
    answered = [a for a in answered if a[2] is not None]
    if answered and _has(upstream[1], _ANSWERS) is None:
        ref, err, answer = answered[0]
        assert answer is not None
        host, _, name = ref.partition("/")
        head = cause_first(err, _ANSWERS) or err
        cause = head.split(": ", 1)[0]
        verb = _VERBS.get(answer, "refuses")
        message = f"{cause}: the mirror {host} {verb} {name}"
        reason = _has(upstream[1], _UNREACHABLE)
        if reason is not None:
            where = _PINGED.search(upstream[1])
            registry = where.group(1) if where else _host(upstream[0])
            message += f"; the registry itself, {registry}, could not be reached ({reason})"
        return message
    last = upstream[1] if tried is not None else text
    answer = cause_first(last, _ANSWERS)
    if answer is not None:
        return answer
    unreachable = cause_first(last, _UNREACHABLE)
    if unreachable is not None:
        return unreachable + UNREACHABLE_HINT
    return line.strip() + (UNREACHABLE_HINT if _has(line, _UNREACHABLE) else "")
