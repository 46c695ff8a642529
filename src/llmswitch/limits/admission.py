"""One admission, as both backends compute it: the request they are given, and turning their per-subject
numbers into a :class:`Reservation` or a :class:`Refusal`.

The memory backend and the Redis script report the same fields per subject, in the order of
:data:`FIELDS`, so the choice of which limit to name, the header windows and the messages are decided
once, here, and the two backends cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmswitch.limits.gcra import NEVER_FITS
from llmswitch.limits.money import usd
from llmswitch.limits.periods import NEVER
from llmswitch.limits.results import BudgetState, Decision, LimitRef, Refusal, Reservation, Window
from llmswitch.limits.spec import LimitKind, SubjectLimits

if TYPE_CHECKING:
    from llmswitch.limits.base import Limiter

FIELDS = (
    "req_ok", "req_remaining", "req_reset_us", "req_retry_us",
    "tok_ok", "tok_remaining", "tok_reset_us", "tok_retry_us",
    "par_ok", "par_used",
    "bud_ok", "spent", "reserved", "reset_at_us", "fresh",
)  # fmt: skip
WIDTH = len(FIELDS)
(REQ_OK, REQ_REMAINING, REQ_RESET, REQ_RETRY, TOK_OK, TOK_REMAINING, TOK_RESET, TOK_RETRY,
 PAR_OK, PAR_USED, BUD_OK, SPENT, RESERVED, RESET_AT, FRESH) = range(WIDTH)  # fmt: skip

OK, REFUSED, UNSEEDED = "ok", "refused", "unseeded"
_US = 1_000_000


class AdmitRequest:
    """Everything a backend needs to admit one request; built once by :class:`Limiter`.

    ``cost`` is the estimate in whole nano-dollars (:mod:`llmswitch.limits.money`), as are the
    ``spent`` and ``reserved`` fields the backends report. ``ends`` holds each subject's budget period end (µs, :data:`NEVER` when it never resets), computed
    from the caller's clock so every process agrees. ``rate_only`` applies rpm/tpm and ignores the rest
    (``check_and_consume``). ``strict`` refuses to invent a budget the limiter has never seen, so the
    spend can be loaded from the store first (:class:`Unseeded`).

    ``count`` > 1 admits that many requests at once, ``tokens`` and ``cost`` being their total (an
    allowance, see :mod:`llmswitch.limits.allowance`; the Redis backend only); ``back`` is how many of
    them its settlement gives back to the rpm limits unused.
    """

    __slots__ = ("back", "cost", "count", "ends", "lease_id", "limits", "now_us", "rate_only", "strict", "tokens")

    def __init__(
        self,
        limits: Sequence[SubjectLimits],
        tokens: int,
        cost: int,
        lease_id: str,
        now_us: int,
        rate_only: bool = False,
        strict: bool = False,
        count: int = 1,
    ) -> None:
        self.limits = limits
        self.count = count
        self.back = 0
        self.tokens = tokens
        self.cost = cost
        self.lease_id = lease_id
        self.now_us = now_us
        self.rate_only = rate_only
        self.strict = strict
        ends = []
        for lim in limits:
            period = lim.budget_period
            ends.append(NEVER if period is None else period.end_us(now_us))
        self.ends = ends


class Unseeded:
    """Budgets never seeded: no state at all, or only what settlements added since it was lost (a
    flushed or restarted Redis). In strict mode the backend will not trust them: load them first."""

    __slots__ = ("subjects",)

    def __init__(self, subjects: tuple[str, ...]) -> None:
        self.subjects = subjects


def decide(req: AdmitRequest, status: str, raw: Sequence[float], origin: Limiter) -> Reservation | Refusal | Unseeded:
    """The result of an admission from a backend's status and per-subject fields (``WIDTH`` per subject)."""
    if status == UNSEEDED:
        return Unseeded(
            tuple(
                lim.subject for i, lim in enumerate(req.limits) if lim.max_budget is not None and raw[i * WIDTH + FRESH]
            )
        )
    if status == OK:
        # admitted: the decision's numbers are worked out only if someone reads them (headers, tests)
        return Reservation(None, None, req, origin, raw)
    outcome = judge(req, raw)
    if isinstance(outcome, Refusal):
        return outcome
    return Reservation(outcome[0], outcome[1], req, origin)


def judge(req: AdmitRequest, raw: Sequence[float]) -> Refusal | tuple[Decision, tuple[BudgetState, ...]]:
    """The refusal the numbers mean, or the decision and budget states of an admission."""
    limits = req.limits
    req_best = tok_best = -1
    budgets: list[BudgetState] = []
    refused_budget: tuple[int, BudgetState, int] | None = None  # (subject index, state, nano-dollars used)
    refused_slot = -1
    refused_rate: tuple[float, int, LimitKind] | None = None  # (retry µs, subject index, kind)
    for i, lim in enumerate(limits):
        at = i * WIDTH
        if lim.rpm_limit is not None:
            if req_best < 0 or _tighter(raw, at + REQ_REMAINING, req_best * WIDTH + REQ_REMAINING):
                req_best = i
            if not raw[at + REQ_OK]:
                refused_rate = _longer(refused_rate, raw[at + REQ_RETRY], i, "rpm_limit")
        if lim.tpm_limit is not None:
            if tok_best < 0 or _tighter(raw, at + TOK_REMAINING, tok_best * WIDTH + TOK_REMAINING):
                tok_best = i
            if not raw[at + TOK_OK]:
                refused_rate = _longer(refused_rate, raw[at + TOK_RETRY], i, "tpm_limit")
        if req.rate_only:
            continue
        if lim.max_parallel_requests is not None and not raw[at + PAR_OK] and refused_slot < 0:
            refused_slot = i
        if lim.max_budget is not None:
            state = BudgetState(
                lim.subject, lim.max_budget, usd(int(raw[at + SPENT])), usd(int(raw[at + RESERVED])),
                int(raw[at + RESET_AT]),
            )  # fmt: skip
            budgets.append(state)
            if not raw[at + BUD_OK] and refused_budget is None:
                refused_budget = (i, state, int(raw[at + SPENT]) + int(raw[at + RESERVED]))
    requests = tokens = None
    if req_best >= 0:
        at = req_best * WIDTH
        requests = Window(limits[req_best].rpm_limit or 0, int(raw[at + REQ_REMAINING]), raw[at + REQ_RESET] / _US)
    if tok_best >= 0:
        at = tok_best * WIDTH
        tokens = Window(limits[tok_best].tpm_limit or 0, int(raw[at + TOK_REMAINING]), raw[at + TOK_RESET] / _US)

    if refused_budget is not None:
        i, state, used = refused_budget
        ref = LimitRef(limits[i].subject, "max_budget")
        reset_s = (state.reset_at_us - req.now_us) / _US if state.reset_at_us != NEVER else None
        limit = state.max_budget or 0.0
        left = usd(max(0, (limits[i].max_budget_nanos or 0) - used))
        decision = Decision(False, reset_s, limit, left, reset_s, ref, requests, tokens)
        return Refusal(ref, limit, usd(used), usd(req.cost), reset_s, decision, state, tuple(budgets))
    if refused_slot >= 0:
        lim = limits[refused_slot]
        slots = lim.max_parallel_requests or 0
        ref = LimitRef(lim.subject, "max_parallel_requests")
        decision = Decision(False, None, slots, 0, None, ref, requests, tokens)
        return Refusal(ref, slots, raw[refused_slot * WIDTH + PAR_USED], 1, None, decision, None, tuple(budgets))
    if refused_rate is not None:
        retry_us, i, kind = refused_rate
        rpm = kind == "rpm_limit"
        rate = (limits[i].rpm_limit if rpm else limits[i].tpm_limit) or 0
        own = _window(rate, raw, i * WIDTH + (REQ_REMAINING if rpm else TOK_REMAINING))
        retry_s = None if retry_us == NEVER_FITS else retry_us / _US
        ref = LimitRef(limits[i].subject, kind)
        decision = Decision(False, retry_s, rate, own.remaining, own.reset_s, ref, requests, tokens)
        requested = 1 if rpm else req.tokens
        return Refusal(ref, rate, rate - own.remaining, requested, retry_s, decision, None, tuple(budgets))

    if requests is None and tokens is None:
        decision = Decision(True)
    else:
        # name the window closest to refusing, so a client can see which limit will bite first
        if tokens is None or (
            requests is not None and requests.remaining * tokens.limit <= tokens.remaining * requests.limit
        ):
            window, ref = requests, LimitRef(limits[req_best].subject, "rpm_limit")
        else:
            window, ref = tokens, LimitRef(limits[tok_best].subject, "tpm_limit")
        assert window is not None
        decision = Decision(True, None, window.limit, window.remaining, window.reset_s, ref, requests, tokens)
    return decision, tuple(budgets) if budgets else ()


def _tighter(raw: Sequence[float], at: int, best: int) -> bool:
    # fewer remaining, or as few but longer until full
    return raw[at] < raw[best] or (raw[at] == raw[best] and raw[at + 1] > raw[best + 1])


def _longer(
    current: tuple[float, int, LimitKind] | None, retry_us: float, i: int, kind: LimitKind
) -> tuple[float, int, LimitKind]:
    # the request fits only when every refusing limit has room, so report the one that frees up last
    if current is None or current[0] == NEVER_FITS:
        return current or (retry_us, i, kind)
    if retry_us == NEVER_FITS or retry_us > current[0]:
        return (retry_us, i, kind)
    return current


def _window(limit: int | None, raw: Sequence[float], at: int) -> Window:
    return Window(limit or 0, int(raw[at]), raw[at + 1] / _US)
