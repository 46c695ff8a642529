"""Names that become parts of an upstream URL's path: a model (Gemini), a deployment (Azure).

A name comes from a config, or from a client through a wildcard deployment (``gemini/*``), and the
request it builds carries the operator's key: ``x/../../v1beta/cachedContents?`` spliced into a path
would reach another endpoint with it. So a name is one path segment, percent-encoded (``?``, ``#``,
``%``, ``:``, spaces...), and a name that could only be read as several segments (``/``, ``\\``, ``.``,
``..``, empty, control characters) is refused with a 400 that names it.

    >>> path_segment("gemini-2.5-flash", provider="gemini", what="model")
    'gemini-2.5-flash'
    >>> path_segment("tuned model?v=2", provider="gemini", what="model")
    'tuned%20model%3Fv%3D2'
"""

from __future__ import annotations

from urllib.parse import quote

from llmswitch.errors import BadRequestError


def path_segment(name: str, *, provider: str, what: str, whole: str | None = None) -> str:
    """``name`` as one percent-encoded path segment, or :class:`BadRequestError` (400) naming it (or
    ``whole``, the name as the caller wrote it, when ``name`` is a part of it)."""
    if name.isascii() and name.replace("-", "").replace("_", "").replace(".", "").isalnum() and name.strip("."):
        return name  # the common case, already safe: no copy, no encoding
    reason = _unusable(name)
    if reason is not None:
        raise BadRequestError(
            f"{provider}: the {what} name {whole or name!r} cannot be part of a URL path ({reason})",
            status_code=400,
            provider=provider,
            model=whole or name,
            param="model",
            should_retry=False,
        )
    return quote(name, safe="")


def _unusable(name: str) -> str | None:
    if name in ("", ".", ".."):
        return "it is empty or a dot segment"
    if "/" in name or "\\" in name:
        return "it contains a slash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "it contains a control character"
    return None
