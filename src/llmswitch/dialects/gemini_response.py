"""Gemini ``GenerateContentResponse`` <-> IR responses, usage and finish reasons, for ``gemini``.

Also what the stream half shares with the whole-response half: the finish-reason maps, candidate
metadata, usage in normal form and one candidate's encoding.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llmswitch import ir
from llmswitch.dialects import citations, native_finish
from llmswitch.dialects.gemini_messages import part_in, parts_out

# Gemini's finish reasons. Every block is content_filter, OTHER included: Gemini uses it for blocks
# without a named category. A call or answer the model got wrong (MALFORMED_FUNCTION_CALL …) is
# error: it ends the turn with nothing usable, which is neither a stop nor a filter.
_FINISH_REASON_MAP: dict[str, ir.FinishReason] = {
    "STOP": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
    "NO_IMAGE": "stop",
    "MAX_TOKENS": "length",
    "CONTINUATION": "length",
    **dict.fromkeys(
        (
            "SAFETY",
            "RECITATION",
            "LANGUAGE",
            "OTHER",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
            "IMAGE_OTHER",
            "MODEL_ARMOR",
            "ESCALATION",
            "PUP_LIMITED_DISABLED",
        ),
        "content_filter",
    ),
    **dict.fromkeys(
        ("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "MALFORMED_RESPONSE", "MISSING_THOUGHT_SIGNATURE"),
        "error",
    ),
}
_FINISH_REASON_OUT = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "MALFORMED_RESPONSE",
}
# candidate fields kept in Choice.provider_specific (and written back by encode_response)
_CANDIDATE_KEYS = (
    "groundingMetadata",
    "urlContextMetadata",
    "citationMetadata",
    "safetyRatings",
    "finishMessage",
    "avgLogprobs",
    "tokenCount",
)


def finish_reason_in(native: str | None, *, has_calls: bool = False) -> ir.FinishReason | None:
    """Our finish reason for Gemini's; ``STOP`` after function calls is ``tool_calls``."""
    if not native:
        return None
    fr = _FINISH_REASON_MAP.get(native, "stop")
    return "tool_calls" if fr == "stop" and has_calls else fr


def finish_reason_out(fr: ir.FinishReason | None, native: str | None) -> str | None:
    """Gemini's word for a finish reason: the native one when it is Gemini's and agrees."""
    if fr is None:
        return None
    if native in _FINISH_REASON_MAP and finish_reason_in(native, has_calls=fr == "tool_calls") == fr:
        return native
    return _FINISH_REASON_OUT[fr]


def candidate_metadata(cand: dict[str, Any]) -> dict[str, Any] | None:
    """What a candidate says besides its content and finish reason (grounding, citations, safety …)."""
    out = {k: v for k, v in cand.items() if k not in ("content", "finishReason", "index", "logprobsResult")}
    return out or None


def created_from(create_time: Any) -> int:
    """Vertex's ``createTime`` (RFC 3339, up to nanoseconds) as Unix seconds; 0 when absent."""
    if not isinstance(create_time, str) or not create_time:
        return 0
    seconds = create_time.rstrip("Z").partition(".")[0]  # Python reads at most microseconds
    try:
        return int(datetime.fromisoformat(seconds + "+00:00").timestamp())
    except ValueError:
        return 0


# ---------------------------------------------------------------- Gemini response -> IR (client side)


def decode_response(body: dict[str, Any]) -> ir.Response:
    """A ``GenerateContentResponse`` as an IR response."""
    rid = str(body.get("responseId") or "")
    choices = [_candidate_in(c, i, rid) for i, c in enumerate(body.get("candidates") or ()) if isinstance(c, dict)]
    feedback = body.get("promptFeedback")
    if not choices and isinstance(feedback, dict) and feedback.get("blockReason"):
        block = str(feedback["blockReason"])
        choices = [
            ir.Choice(
                finish_reason="content_filter",
                native_finish_reason=block,
                provider_specific={"promptFeedback": feedback},
            )
        ]
        feedback = None
    um = body.get("usageMetadata")
    return ir.Response(
        id=rid,
        model=str(body.get("modelVersion") or ""),
        created=created_from(body.get("createTime")),
        choices=choices,
        usage=map_usage_in(um) if isinstance(um, dict) else None,
        provider_specific={"promptFeedback": feedback} if feedback else None,
    )


def _candidate_in(c: dict[str, Any], pos: int, rid: str) -> ir.Choice:
    index = int(c.get("index", pos))
    parts: list[ir.Part] = []
    calls = 0
    for p in (c.get("content") or {}).get("parts") or ():
        if isinstance(p, dict):
            got = part_in(p, role="model", call_seed=f"{rid}:{index}:{calls}")
            calls += sum(isinstance(x, ir.ToolCallPart) for x in got)
            parts.extend(got)
    native = c.get("finishReason")
    meta = candidate_metadata(c)
    if meta is not None and ("groundingMetadata" in meta or "citationMetadata" in meta):
        texts = [p.text for p in parts if isinstance(p, ir.TextPart)]
        citations.attach(parts, citations.gemini_in(meta, texts))
    return ir.Choice(
        index=index,
        parts=parts,
        finish_reason=finish_reason_in(native, has_calls=calls > 0),
        native_finish_reason=native,
        logprobs=logprobs_in(c.get("logprobsResult")),
        provider_specific=meta,
    )


def logprobs_in(lr: Any) -> dict[str, Any] | None:
    """Gemini's ``logprobsResult`` in OpenAI's ``logprobs.content`` shape."""
    if not isinstance(lr, dict) or not lr.get("chosenCandidates"):
        return None
    tops = lr.get("topCandidates") or []
    content = []
    for i, ch in enumerate(lr["chosenCandidates"]):
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        alts = top.get("candidates") or []
        content.append(
            {
                **_token_in(ch),
                "top_logprobs": [_token_in(a) for a in alts if isinstance(a, dict)],
            }
        )
    return {"content": content}


def _token_in(t: dict[str, Any]) -> dict[str, Any]:
    # OpenAI's token entries always carry the token's UTF-8 bytes
    token = str(t.get("token", ""))
    return {"token": token, "logprob": t.get("logProbability", 0.0), "bytes": list(token.encode())}


def logprobs_out(lp: Any) -> dict[str, Any] | None:
    """OpenAI-shaped logprobs as Gemini's ``logprobsResult``."""
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list) or not content:
        return None
    chosen = [{"token": t.get("token", ""), "logProbability": t.get("logprob", 0.0)} for t in content]
    top = [
        {
            "candidates": [
                {"token": a.get("token", ""), "logProbability": a.get("logprob", 0.0)}
                for a in t.get("top_logprobs") or []
            ]
        }
        for t in content
    ]
    return {"topCandidates": top, "chosenCandidates": chosen}


def map_usage_in(u: dict[str, Any]) -> ir.Usage:
    """``usageMetadata`` in normal form: thoughts are inside the output, cached tokens and the tool-use
    prompt inside the input.

    ``toolUsePromptTokenCount`` (what a tool such as Google Search fed the model) is billed as input, so it
    is added to ``input_tokens``; readings before it was decoded left it out and undercounted the input.
    """
    thoughts = _count(u.get("thoughtsTokenCount"))
    tool_use = _count(u.get("toolUsePromptTokenCount"))
    prompt = _modalities(u.get("promptTokensDetails"))
    candidates = _modalities(u.get("candidatesTokensDetails"))
    return ir.Usage(
        input_tokens=_count(u.get("promptTokenCount")) + tool_use,
        output_tokens=_count(u.get("candidatesTokenCount")) + thoughts,
        cache_read_tokens=_count(u.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        reasoning_reported="thoughtsTokenCount" in u,
        tool_use_prompt_tokens=tool_use,
        input_audio_tokens=(prompt or {}).get("AUDIO", 0),
        output_audio_tokens=(candidates or {}).get("AUDIO", 0),
        input_modalities=prompt,
        output_modalities=candidates,
        cache_modalities=_modalities(u.get("cacheTokensDetails")),
        tool_use_modalities=_modalities(u.get("toolUsePromptTokensDetails")),
        service_tier=u["serviceTier"] if isinstance(u.get("serviceTier"), str) else None,
    )


def map_usage_out(u: ir.Usage) -> dict[str, Any]:
    """IR usage as ``usageMetadata`` (Gemini counts the tool-use prompt outside ``promptTokenCount``)."""
    out: dict[str, Any] = {
        "promptTokenCount": max(u.input_tokens - u.tool_use_prompt_tokens, 0),
        "candidatesTokenCount": max(u.output_tokens - u.reasoning_tokens, 0),
        "totalTokenCount": u.input_tokens + u.output_tokens,
    }
    if u.cache_read_tokens:
        out["cachedContentTokenCount"] = u.cache_read_tokens
    if u.tool_use_prompt_tokens:
        out["toolUsePromptTokenCount"] = u.tool_use_prompt_tokens
    if u.reasoning_tokens or u.reasoning_reported:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    prompt = u.input_modalities
    if prompt is None and u.input_audio_tokens:
        # a provider that only tells audio apart (OpenAI): the rest of the prompt is text
        prompt = {"TEXT": max(u.input_tokens - u.tool_use_prompt_tokens - u.input_audio_tokens, 0)}
        prompt["AUDIO"] = u.input_audio_tokens
    candidates = u.output_modalities
    if candidates is None and u.output_audio_tokens:
        candidates = {"TEXT": max(u.output_tokens - u.reasoning_tokens - u.output_audio_tokens, 0)}
        candidates["AUDIO"] = u.output_audio_tokens
    for key, split in (
        ("promptTokensDetails", prompt),
        ("candidatesTokensDetails", candidates),
        ("cacheTokensDetails", u.cache_modalities),
        ("toolUsePromptTokensDetails", u.tool_use_modalities),
    ):
        if split:
            out[key] = [{"modality": m, "tokenCount": n} for m, n in split.items()]
    if u.service_tier in _SERVICE_TIERS:
        out["serviceTier"] = u.service_tier
    return out


# the tiers Gemini reports in usageMetadata.serviceTier (another provider's "default", "auto" … are not)
_SERVICE_TIERS = ("standard", "flex", "priority")


def _modalities(details: Any) -> dict[str, int] | None:
    """Gemini's ``[{"modality": "AUDIO", "tokenCount": n}, ...]`` as ``{"AUDIO": n, ...}`` (None when absent)."""
    if not isinstance(details, list):
        return None
    out: dict[str, int] = {}
    for d in details:
        if isinstance(d, dict) and isinstance(d.get("modality"), str):
            out[d["modality"]] = out.get(d["modality"], 0) + _count(d.get("tokenCount"))
    return out


def _count(v: Any) -> int:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0


# ---------------------------------------------------------------- IR -> Gemini response (server side)


def encode_response(resp: ir.Response) -> dict[str, Any]:
    """An IR response as a ``GenerateContentResponse``."""
    candidates: list[dict[str, Any]] = []
    feedback = (resp.provider_specific or {}).get("promptFeedback")
    for c in resp.choices:
        ps = c.provider_specific or {}
        if not c.parts and "promptFeedback" in ps:
            feedback = ps["promptFeedback"]  # a blocked prompt has no candidate at all
            continue
        candidates.append(encode_candidate(c.index, c.parts, c.finish_reason, c.native_finish_reason, ps, c.logprobs))
    out: dict[str, Any] = {}
    if candidates:
        out["candidates"] = candidates
    if feedback:
        out["promptFeedback"] = feedback
    if resp.usage is not None:
        out["usageMetadata"] = map_usage_out(resp.usage)
    out["modelVersion"] = resp.model
    out["responseId"] = resp.id
    return out


def encode_candidate(
    index: int,
    parts: list[ir.Part],
    finish: ir.FinishReason | None,
    native: str | None,
    meta: dict[str, Any] | None = None,
    logprobs: Any = None,
) -> dict[str, Any]:
    """One candidate: its parts, finish reason and the Gemini metadata kept from the provider."""
    cand: dict[str, Any] = {}
    # an answer hands its client every signature, whoever made it: the client sends it back with
    # the conversation, and only the provider that signed it will be given it again
    wire = parts_out(parts, any_signature=True)
    if wire:
        cand["content"] = {"parts": wire, "role": "model"}
    fr = finish_reason_out(finish, native)
    if fr is not None:
        cand["finishReason"] = fr
        if native not in _FINISH_REASON_MAP and native_finish.telling(native) is not None:
            cand["finishMessage"] = native  # another provider's own reason (pause_turn …): Gemini has no word for it
    cand["index"] = index
    lr = logprobs_out(logprobs)
    if lr is not None:
        cand["logprobsResult"] = lr
    for k in _CANDIDATE_KEYS:
        if meta and k in meta:
            cand[k] = meta[k]
    if "groundingMetadata" not in cand:
        # another provider's citations (and Anthropic's web searches) as Gemini's grounding
        text = "".join(p.text for p in parts if isinstance(p, ir.TextPart))
        gm = citations.gemini_out(text, citations.message_spans(parts), citations.search_queries(parts))
        if gm is not None:
            cand["groundingMetadata"] = gm
    return cand
