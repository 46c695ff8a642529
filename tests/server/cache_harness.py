"""Gateways with a response cache, and the three official SDKs asking them (see gateway_harness)."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import openai
from gateway_harness import ServedGateway, gateway_config
from google import genai
from google.genai import types as gtypes

from llmswitch.testing import FakeUpstream


def cache_config(up: FakeUpstream, store: str, **params: Any) -> str:
    """The harness's three groups with ``litellm_settings.cache`` on, ``params`` as ``cache_params``."""
    text = gateway_config(up, store, num_retries=0) + "litellm_settings:\n  cache: true\n"
    if params:
        text += "  cache_params:\n" + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in params.items())
    return text


def stored(gw: ServedGateway, timeout: float = 5.0) -> None:
    """Wait until the answers served so far are in the cache (they are stored after the response)."""
    cache = gw.gateway.cache
    assert cache is not None
    deadline = time.monotonic() + timeout
    while cache.pending_stores:
        assert time.monotonic() < deadline, "cache stores still pending"
        time.sleep(0.005)
    time.sleep(0.01)  # a store scheduled by the last response's end may not have started yet
    while cache.pending_stores:
        assert time.monotonic() < deadline, "cache stores still pending"
        time.sleep(0.005)


def ask(gw: ServedGateway, client: str, key: str, group: str, prompt: str, *, stream: bool) -> tuple[str, Any]:
    """(text, usage) of one chat call through ``client``'s official SDK; usage as (input, output)."""
    if client == "openai":
        oc = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
        with oc:
            kwargs: dict[str, Any] = {
                "model": group,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 64,
            }
            if not stream:
                r = oc.chat.completions.create(**kwargs)
                assert r.usage is not None
                return r.choices[0].message.content or "", (r.usage.prompt_tokens, r.usage.completion_tokens)
            text, usage = "", None
            for chunk in oc.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}):
                if chunk.usage is not None:
                    usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for ch in chunk.choices:
                    text += ch.delta.content or ""
            return text, usage
    if client == "anthropic":
        ac = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
        with ac:
            kwargs = {"model": group, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
            if stream:
                with ac.messages.stream(**kwargs) as s:
                    streamed = "".join(s.text_stream)
                    message = s.get_final_message()
                assert streamed == "".join(b.text for b in message.content if b.type == "text")
            else:
                message = ac.messages.create(**kwargs)
            text = "".join(b.text for b in message.content if b.type == "text")
            return text, (message.usage.input_tokens, message.usage.output_tokens)
    gc = genai.Client(api_key=key, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"))
    config = gtypes.GenerateContentConfig(max_output_tokens=64)
    with gc:
        if stream:
            chunks = list(gc.models.generate_content_stream(model=group, contents=prompt, config=config))
        else:
            chunks = [gc.models.generate_content(model=group, contents=prompt, config=config)]
    text, usage = "", None
    for chunk in chunks:
        for cand in chunk.candidates or []:
            for part in (cand.content.parts if cand.content else None) or []:
                text += part.text or ""
        um = chunk.usage_metadata
        if um is not None and um.total_token_count:
            usage = (um.prompt_token_count or 0, um.candidates_token_count or 0)
    return text, usage
