"""The guardrails of one request: which apply, and the three moments they run at.

    >>> run = guardrails.start(requested=body.get("guardrails"), key=rec, team=team)  # doctest: +SKIP
    >>> if run is not None:                                                          # doctest: +SKIP
    ...     await run.pre_call(req)               # may mask req in place, or raise GuardrailBlocked
    ...     resp = await run.during_call(call)    # the upstream call, with during_call checks beside it
    ...     resp = await run.post_call(resp)      # the answer checked, cleaned, masked values restored

``start`` returns ``None`` when no guardrail applies, so a gateway without guardrails pays one
attribute test per request. Every decision (guardrail, mode, action, kinds found with counts — never a
value) is appended to ``run.decisions``, which the gateway keeps in ``request.state["guardrails"]`` and
writes to the spend record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from llmswitch import ir
from llmswitch.errors import BadRequestError
from llmswitch.guardrails.base import Context, Guardrail, GuardrailBlocked, Outcome, Phase, TextScanner, Vault

T = TypeVar("T")
STREAM_WINDOW = 256
"""Characters of a streamed answer held back, so a value split across chunks is seen whole."""


class Guardrails:
    """The configured guardrails, by name; ``default_on`` ones run on every request, the others when a
    key, its team or the request names them; all in the order they are configured."""

    def __init__(self, items: Sequence[Guardrail]) -> None:
        self.by_name = {g.name: g for g in items}
        self.defaults = tuple(g for g in items if g.default_on)
        self._order = {g.name: i for i, g in enumerate(items)}

    def __len__(self) -> int:
        return len(self.by_name)

    def __repr__(self) -> str:
        return f"Guardrails({list(self.by_name)!r})"

    def names(self, value: Any, field: str) -> list[str]:
        """Names from a request, a key or a team, checked: a list of configured guardrail names."""
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _invalid(field, "must be a list of guardrail names")
        unknown = [v for v in value if v not in self.by_name]
        if unknown:
            raise _invalid(field, f"no guardrail named {', '.join(map(repr, unknown))} is configured")
        return value

    def start(
        self,
        *,
        requested: Any = None,
        key: Iterable[str] = (),
        team: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> Run | None:
        """The run for a request, or ``None`` when no guardrail applies to it."""
        extra = [*key, *team, *self.names(requested, "guardrails")] if requested is not None else [*key, *team]
        if not extra:
            return Run(self.defaults, metadata) if self.defaults else None
        chosen = list(self.defaults)
        for name in extra:
            g = self.by_name.get(name)
            if g is not None and g not in chosen:
                chosen.append(g)
        # in the config's order, whoever asked for them: a refusal listed before a mask sees the values
        if not chosen:
            return None
        chosen.sort(key=lambda g: self._order[g.name])
        return Run(tuple(chosen), metadata)


def _invalid(field: str, message: str) -> BadRequestError:
    return BadRequestError(
        f"{field}: {message}", status_code=400, provider="llmswitch", error_type="invalid_request_error", param=field
    )


def request_parts(req: ir.Request) -> list[ir.TextPart]:
    """The text parts of a prompt, every message (history included) and tool results."""
    out: list[ir.TextPart] = []
    for m in req.messages:
        for p in m.content:
            if isinstance(p, ir.TextPart):
                out.append(p)
            elif isinstance(p, ir.ToolResultPart):
                out += [c for c in p.content if isinstance(c, ir.TextPart)]
    return out


def response_parts(resp: ir.Response) -> list[ir.TextPart]:
    return [p for c in resp.choices for p in c.parts if isinstance(p, ir.TextPart)]


class Run:
    """The guardrails chosen for one request, and what they decided."""

    __slots__ = ("decisions", "guardrails", "metadata", "request", "restore", "vault")

    def __init__(self, guardrails: Sequence[Guardrail], metadata: Mapping[str, Any] | None = None) -> None:
        self.guardrails = guardrails
        self.metadata = metadata
        self.decisions: list[dict[str, Any]] = []
        self.vault = Vault()
        self.request: ir.Request | None = None
        self.restore = any(getattr(g, "output_parse_pii", False) for g in guardrails)

    def _in(self, mode: str) -> list[Guardrail]:
        return [g for g in self.guardrails if mode in g.modes]

    @property
    def reads_answer(self) -> bool:
        """The answer must be decoded (not relayed as bytes): something checks or rewrites it."""
        return self.restore or any(m in g.modes for g in self.guardrails for m in ("post_call", "logging_only"))

    def _context(self, phase: Phase) -> Context:
        return Context(phase=phase, request=self.request, vault=self.vault, metadata=self.metadata)

    def _record(self, g: Guardrail, mode: str, outcome: Outcome, *, applied: bool = True) -> None:
        if outcome.blocked:
            action = "blocked" if mode != "logging_only" else "flagged"
        elif outcome.texts is not None and applied:
            action = "masked"
        elif outcome.found:
            action = "flagged"
        else:
            action = "passed"
        decision: dict[str, Any] = {"guardrail": g.name, "mode": mode, "action": action}
        if outcome.found:
            decision["found"] = dict(outcome.found)
        self.decisions.append(decision)

    async def pre_call(self, req: ir.Request) -> bool:
        """Check the prompt; masks ``req`` in place. True when the prompt was changed (the request must
        then be re-encoded, not relayed as the client sent it)."""
        self.request = req
        changed = False
        for mode in ("pre_call", "logging_only"):
            for g in self._in(mode):
                parts = request_parts(req)
                outcome = await g.check([p.text for p in parts], self._context("input"))
                self._record(g, mode, outcome, applied=mode == "pre_call")
                if mode == "logging_only":
                    continue
                if outcome.blocked:
                    raise GuardrailBlocked(g.name, outcome.reason, phase="input")
                if outcome.texts is not None:
                    for p, text in zip(parts, outcome.texts, strict=True):
                        p.text = text
                    changed = True
        return changed

    async def during_call(self, call: Awaitable[T]) -> T:
        """Await ``call`` (the upstream call) with the ``during_call`` checks running beside it; a refusal
        cancels the call. Nothing reaches the client before both are done."""
        checks = self._in("during_call")
        if not checks or self.request is None:
            return await call
        texts = [p.text for p in request_parts(self.request)]
        task: asyncio.Future[T] = asyncio.ensure_future(call)
        try:
            outcomes = await asyncio.gather(*(g.check(texts, self._context("input")) for g in checks))
        except BaseException:
            task.cancel()
            raise
        for g, outcome in zip(checks, outcomes, strict=True):
            # the prompt has gone already: a mask cannot apply, so what it found is flagged
            self._record(g, "during_call", outcome, applied=False)
            if outcome.blocked:
                task.cancel()
                if task.done() and not task.cancelled() and task.exception() is None:
                    _close(task.result())
                raise GuardrailBlocked(g.name, outcome.reason, phase="input")
        return await task

    async def post_call(self, resp: ir.Response) -> ir.Response:
        """Put masked values back for ``output_parse_pii`` (first, so the checks below see what the caller
        will), then check and rewrite the answer."""
        if self.restore and self.vault.by_token:
            for p in response_parts(resp):
                p.text = self.vault.restore(p.text)
        for mode in ("post_call", "logging_only"):
            for g in self._in(mode):
                parts = response_parts(resp)
                outcome = await g.check([p.text for p in parts], self._context("output"))
                self._record(g, mode, outcome, applied=mode == "post_call")
                if mode == "logging_only":
                    continue
                if outcome.blocked:
                    raise GuardrailBlocked(g.name, outcome.reason, phase="output")
                if outcome.texts is not None:
                    for p, text in zip(parts, outcome.texts, strict=True):
                        p.text = text
        return resp

    def stream(self) -> StreamGuard | None:
        """A filter for the answer's stream events, or ``None`` when nothing reads the answer."""
        return StreamGuard(self) if self.reads_answer else None


def _close(result: Any) -> None:
    stream = result[0] if isinstance(result, tuple) and result else result
    close = getattr(stream, "close", None)
    if callable(close):
        close()


class StreamGuard:
    """Checks a streamed answer as it passes, holding back the last ``window`` characters of text so a
    value split across chunks is seen whole (and never cutting inside a match or an unclosed ``<...``).

    The latency it adds is the time the model takes to write ``window`` characters (about 64 tokens
    for the default 256); the whole answer goes out when the stream ends. Guardrails that need the
    whole answer (a JSON schema, an external service) check it once at the end, when it has been sent:
    a refusal then ends the stream with an error event.
    """

    def __init__(self, run: Run, window: int = STREAM_WINDOW) -> None:
        self.run = run
        self.window = window
        self.pending: dict[int, str] = {}
        self.text: dict[int, list[str]] = {}
        self.piecewise = [g for g in run._in("post_call") if g.synchronous and not g.whole_answer]
        self.at_end = [g for g in run._in("post_call") if not g.synchronous or g.whole_answer]
        self.logging = run._in("logging_only")
        self.keep_text = bool(self.at_end or self.logging)
        self.found: dict[str, dict[str, int]] = {}
        self.changed: set[str] = set()

    def feed(self, ev: ir.StreamEvent) -> ir.StreamEvent | None:
        """The event to send in place of ``ev`` (its text possibly held back or rewritten), or ``None``."""
        # Gemini repeats the usage on every chunk: only the finish reason says the text is complete
        finishing = ev.finish_reason is not None
        if ev.text is None and not finishing:
            return ev
        i = ev.choice
        pending = self.pending.get(i, "") + (ev.text or "")
        if self.keep_text:  # the whole answer, for the checks that need it at the end
            self.text.setdefault(i, []).append(ev.text or "")
        cut = len(pending) if finishing else self._cut(pending)
        head, self.pending[i] = pending[:cut], pending[cut:]
        head = self._apply(head)
        if head == (ev.text or "") and not finishing:
            return ev
        out = msgspec.structs.replace(ev, text=head or None)
        if out.text is None and out == ir.StreamEvent(choice=i):
            return None
        return out

    def _cut(self, pending: str) -> int:
        cut = len(pending) - self.window
        if cut <= 0:
            return 0
        for g in self.piecewise:
            if isinstance(g, TextScanner):
                for f in g.scan(pending, "output"):
                    if f.start < cut < f.end:
                        cut = f.start
        lt = pending.rfind("<", 0, cut)
        if lt >= 0 and pending.find(">", lt, cut) < 0:
            cut = lt  # an unclosed tag or masking token: keep it for the next piece
        return max(cut, 0)

    def _apply(self, text: str) -> str:
        if not text:
            return text
        if self.run.restore:
            text = self.run.vault.restore(text)
        for g in self.piecewise:
            outcome = g.check_now([text], self.run._context("output"))
            self._note(g.name, outcome)
            if outcome.blocked:
                self._finish_decisions()
                raise GuardrailBlocked(g.name, outcome.reason, phase="output")
            if outcome.texts is not None:
                text = outcome.texts[0]
                self.changed.add(g.name)
        return text

    def _note(self, name: str, outcome: Outcome) -> None:
        if outcome.found:
            counts = self.found.setdefault(name, {})
            for k, n in outcome.found.items():
                counts[k] = counts.get(k, 0) + n

    async def close(self) -> ir.StreamEvent | None:
        """At the end of the stream: what is still held back (an event to send, or ``None``), after the
        checks that need the whole answer; a refusal raises :class:`GuardrailBlocked`."""
        tail = "".join(self._apply(p) for p in self.pending.values() if p)
        self.pending.clear()
        whole = ["".join(parts) for parts in self.text.values()]
        ctx = self.run._context("output")
        for g in self.at_end:
            outcome = await g.check(whole, ctx)
            self.run._record(g, "post_call", outcome, applied=False)
            if outcome.blocked:
                self._finish_decisions()
                raise GuardrailBlocked(g.name, outcome.reason, phase="output")
        for g in self.logging:
            self.run._record(g, "logging_only", await g.check(whole, ctx), applied=False)
        self._finish_decisions()
        return ir.StreamEvent(text=tail) if tail else None

    def _finish_decisions(self) -> None:
        for g in self.piecewise:
            found = self.found.get(g.name)
            decision: dict[str, Any] = {"guardrail": g.name, "mode": "post_call"}
            decision["action"] = "masked" if g.name in self.changed else "flagged" if found else "passed"
            if found:
                decision["found"] = found
            self.run.decisions.append(decision)
        self.piecewise = []
