"""Thinking budgets (Anthropic ``budget_tokens``, Gemini ``thinkingBudget``) <-> OpenAI ``reasoning_effort``.

A budget is a number of tokens; an effort is a bucket. The buckets are bounded by the budgets
Anthropic's encoder gives each effort (``anthropic_messages._EFFORT_BUDGET``), so an effort survives
a round trip through a budget: low 2048, medium 4096, high 8192 (and xhigh 16384, which comes back
as high, OpenAI's highest everywhere).

    >>> [effort_for_budget(b) for b in (1024, 2048, 4096, 8192, 32000, -1, 0)]
    ['low', 'low', 'medium', 'high', 'high', 'medium', None]
"""

from __future__ import annotations

from llmswitch import ir

# Gemini's "dynamic" budget: the model decides how long to think
DYNAMIC = -1
# what a dynamic budget becomes where a number is required (Anthropic): the budget of a medium
# effort, the level OpenAI's reasoning models default to
DYNAMIC_BUDGET = 4096


def effort_for_budget(budget: int) -> ir.ReasoningEffort | None:
    """The ``reasoning_effort`` bucket for a thinking budget; None for 0 (thinking off)."""
    if budget == 0:
        return None
    if budget < 0:
        return "medium"  # dynamic: OpenAI's own default effort
    if budget <= 2048:
        return "low"
    if budget < 8192:
        return "medium"
    return "high"
