"""Turn every URL pattern of the site into a concrete path to probe (roles and CSRF tests)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.urls import URLPattern, URLResolver, get_resolver

_GROUP = re.compile(
    r"\(\?P<(?P<name>\w+)>(?P<body>[^()]*(?:\([^()]*\)[^()]*)*)\)|<(?:\w+:)?(?P<conv>\w+)>"
)


def url_patterns() -> Iterator[tuple[str, str]]:
    """(pattern text, key) for every endpoint; key = URL name, or the pattern when unnamed."""

    def walk(resolver: URLResolver, prefix: str) -> Iterator[tuple[str, str]]:
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                text = prefix + str(entry.pattern)
                namespace = ":".join(n for n in (getattr(resolver, "namespace", None),) if n)
                name = entry.name or text
                yield text, f"{namespace}:{name}" if namespace else name

    yield from walk(get_resolver(), "")


def concrete_path(pattern: str, values: dict[str, str]) -> str:
    """A real path for `pattern`: named groups from `values`, alternations by their first option."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name") or match.group("conv")
        if name in values:
            return values[name]
        body = match.group("body") or ""
        if body and re.fullmatch(r"[\w-]+(\|[\w-]+)*", body):
            return body.split("|")[0]
        return values.get("*", "1")

    text = _GROUP.sub(replace, pattern)
    text = text.replace("^", "").replace("$", "").replace("\\", "")
    return "/" + text
