"""A length limit on prompts and answers, in characters or estimated tokens (about four characters
each, as the gateway's budget estimates count), so a key can be held to short prompts.

    >>> import asyncio
    >>> g = Length("short", modes=frozenset({"pre_call"}), max_input_chars=10)
    >>> asyncio.run(g.check(["a" * 11], Context(phase="input"))).reason
    'the prompt has 11 characters, over the limit of 10'
"""

from __future__ import annotations

from collections.abc import Sequence

from llmswitch.guardrails.base import PASSED, Context, Guardrail, Outcome


class Length(Guardrail):
    kind = "length"

    def __init__(
        self,
        name: str,
        *,
        modes: frozenset[str],
        default_on: bool = False,
        max_input_chars: int | None = None,
        max_input_tokens: int | None = None,
        max_output_chars: int | None = None,
    ) -> None:
        super().__init__(name, modes=modes, default_on=default_on)
        self.max_input_chars = max_input_chars
        self.max_input_tokens = max_input_tokens
        self.max_output_chars = max_output_chars

    def check_now(self, texts: Sequence[str], context: Context) -> Outcome:
        chars = sum(len(t) for t in texts)
        if context.phase == "input":
            if self.max_input_chars is not None and chars > self.max_input_chars:
                return _over("the prompt", f"{chars} characters", f"{self.max_input_chars}")
            tokens = -(-chars // 4)
            if self.max_input_tokens is not None and tokens > self.max_input_tokens:
                return _over("the prompt", f"about {tokens} tokens", f"{self.max_input_tokens}")
        elif self.max_output_chars is not None and chars > self.max_output_chars:
            return _over("the answer", f"{chars} characters", f"{self.max_output_chars}")
        return PASSED


def _over(what: str, size: str, limit: str) -> Outcome:
    return Outcome(found={"TOO_LONG": 1}, blocked=True, reason=f"{what} has {size}, over the limit of {limit}")
