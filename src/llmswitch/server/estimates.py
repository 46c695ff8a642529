"""Token counts the gateway estimates itself: for reservations before a call (tpm, budgets), and for
what a request used when the provider never said (a stream or an answer cut short).

About four characters a token, rounded up, with a flat allowance for images and files: an upper-ish
bound that is cheap enough to compute on every request.

    >>> tokens_of_chars(9)
    3
"""

from __future__ import annotations

import msgspec

from llmswitch import ir


def estimate_prompt_tokens(req: ir.Request) -> int:
    """A cheap upper-ish estimate (about four characters a token) used for tpm and budget reservations."""
    chars = 0
    for m in req.messages:
        for p in m.content:
            text = getattr(p, "text", None)
            if isinstance(text, str):
                chars += len(text)
            elif isinstance(p, ir.ToolCallPart):
                chars += len(p.arguments) + len(p.name)
            else:
                chars += 1000  # an image or a file: a flat allowance
    return chars // 4 + 4 * len(req.messages) + 1


def estimate_embedding_tokens(req: ir.EmbeddingRequest) -> int:
    """The same estimate for the texts of an embedding request."""
    return sum(len(text) for text in req.input) // 4 + len(req.input)


def tokens_of_chars(chars: int) -> int:
    """Tokens of ``chars`` characters of text, at the estimate's four characters a token, rounded up."""
    return -(-chars // 4)


def usage_so_far(req: ir.Request, reported: ir.Usage | None, delivered_chars: int) -> tuple[ir.Usage, bool]:
    """What a stream that ended before its final usage (a client hang-up, an upstream cut, a shutdown)
    used, and whether that is an estimate: the input tokens as the provider reported them, else counted
    locally as the reservation counts them; the output as reported, or the text relayed if more."""
    output = tokens_of_chars(delivered_chars)
    if reported is not None and reported.input_tokens > 0 and reported.output_tokens >= output:
        return reported, False
    if reported is None:
        return ir.Usage(input_tokens=estimate_prompt_tokens(req), output_tokens=output), True
    return (
        msgspec.structs.replace(
            reported,
            input_tokens=reported.input_tokens or estimate_prompt_tokens(req),
            output_tokens=max(reported.output_tokens, output),
        ),
        True,
    )
