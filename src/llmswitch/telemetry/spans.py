"""A span as the request path records it (:class:`SpanRecord`: ids, times, plain attributes), and the W3C
``traceparent`` it is written to and read from.

    >>> parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    ('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7')
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from llmswitch.procid import RNG

Kind = Literal["server", "client", "internal"]


class SpanRecord:
    """One span as recorded on the request path: what the exporter needs, nothing more. Attributes are
    plain values (str, bool, int, float); an unsampled span records none and is never exported."""

    __slots__ = ("attributes", "end_ns", "error", "kind", "name", "parent_id", "remote_parent", "sampled", "span_id",
                 "start_ns", "trace_id")  # fmt: skip

    def __init__(
        self,
        name: str,
        kind: Kind,
        trace_id: int,
        parent_id: int,
        sampled: bool,
        attributes: dict[str, Any] | None = None,
        remote_parent: bool = False,
    ) -> None:
        self.name = name
        self.kind: Kind = kind
        self.trace_id = trace_id
        self.span_id = RNG.getrandbits(64) or 1
        self.parent_id = parent_id  # 0: a root span
        self.remote_parent = remote_parent
        self.sampled = sampled
        self.attributes: dict[str, Any] = attributes if attributes is not None and sampled else {}
        self.error = False
        self.start_ns = time.time_ns()
        self.end_ns = 0

    def is_recording(self) -> bool:
        return self.sampled and not self.end_ns

    def set_attribute(self, key: str, value: Any) -> None:
        if self.sampled and value is not None:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.sampled:
            self.attributes.update(attributes)

    def update_name(self, name: str) -> None:
        self.name = name

    def fail(self) -> None:
        self.error = True

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{'01' if self.sampled else '00'}"


def _parse(traceparent: str) -> tuple[int, int, bool] | None:
    """(trace id, span id, sampled) of a valid W3C ``traceparent`` (version 00, or a later one read as 00)."""
    value = traceparent.strip()
    if len(value) < 55 or value[2] != "-" or value[35] != "-" or value[52] != "-" or value[:2] == "ff":
        return None
    try:
        trace_id, span_id, flags = int(value[3:35], 16), int(value[36:52], 16), int(value[53:55], 16)
    except ValueError:
        return None
    if not trace_id or not span_id or (value[:2] == "00" and len(value) != 55):
        return None
    return trace_id, span_id, bool(flags & 1)


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) of a valid W3C ``traceparent``, else None (for logs, tracing on or off)."""
    parsed = _parse(value) if value else None
    if parsed is None:
        return None
    return f"{parsed[0]:032x}", f"{parsed[1]:016x}"
