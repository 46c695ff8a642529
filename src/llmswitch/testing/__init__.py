"""A fake LLM provider for tests: real HTTP on loopback, speaking OpenAI, Anthropic and Gemini.

:class:`FakeUpstream` serves the same wire formats the providers do (rendered by llmswitch's own
dialect encoders), so any client can be pointed at it: ``llmswitch.completion``, the official
``openai``, ``anthropic`` and ``google-genai`` SDKs, curl. Each request is answered by a scripted
:class:`Reply`, which can also inject faults: error statuses with ``Retry-After``, latency, slow
or cut streams, hangs.

    >>> import llmswitch
    >>> from llmswitch.testing import FakeUpstream, Reply
    >>> with FakeUpstream() as up:
    ...     up.script(Reply(status=429, retry_after=0.05), Reply(text="Hello!"))
    ...     r = llmswitch.completion("openai/gpt-4o-mini", [{"role": "user", "content": "Hi"}],
    ...                              api_base=up.openai_base, api_key="test")
    ...     r.choices[0].message.content, len(up.requests)
    ('Hello!', 2)

Inside a running event loop use ``async with FakeUpstream() as up:``. ``FakeUpstream(port=4010)``
listens on a fixed port (by default any free one); ``llmswitch fake-upstream --port 4010`` runs it as a
process, for a gateway config to point at (``examples/fake-upstream.yaml``).

Routes (``up.url`` is the base; ``up.openai_base``, ``up.anthropic_base`` and ``up.gemini_base`` are
what each SDK takes as its base URL):

- OpenAI: ``POST /v1/chat/completions``, ``POST /v1/embeddings`` (``float`` and ``base64``),
  ``GET /v1/models`` (also without the ``/v1`` prefix).
- Anthropic: ``POST /v1/messages``, ``POST /v1/messages/count_tokens``.
- Gemini: ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent`` (``alt=sse``,
  or one JSON array without it), ``:countTokens``, ``:embedContent``, ``:batchEmbedContents`` (also
  under ``/v1``). Token counts are the fake's own tokenizer (``fake_token_count``: a token per word or
  punctuation mark, 4 per message), not llmswitch's local estimate.
- Ollama: ``POST /api/chat`` (NDJSON streams unless ``"stream": false``), ``POST /api/embed``.
- The providers' batch APIs (OpenAI/Azure Files and Batch, Anthropic Message Batches, Gemini batch
  mode), their jobs progressing over polls: see ``llmswitch.testing._batches`` (``up.batches``).

Choosing replies: ``up.script(*replies, model=None)`` queues replies (optionally only for one
model); when the queues are empty ``up.responder(request)`` is called if set, else ``up.default``
answers. The default reply leaves its content to the request, as a model would: it echoes the last
user message of a plain request; when tools are sent it calls one (respecting ``tool_choice``) with
arguments valid for the tool's JSON schema, and answers in words once the tool results come back;
with a ``response_format`` (Gemini: ``responseSchema`` / ``responseMimeType``) its answer is JSON
that fits. A ``default`` with faults only (``Reply(latency=0.2)``) does the same, slowly.

Observing: ``up.requests`` lists every :class:`RecordedRequest` (method, path, query, lowercased
headers, parsed JSON body, decoded chat request); ``up.calls_for("/chat/completions")`` filters
them; ``up.disconnects`` counts requests whose client went away before the answer ended, and
``up.wait_for_disconnects()`` / ``await up.await_disconnects()`` wait for it with a bound.

A malformed request gets the dialect's own 400, as from the real API, so a test also proves the
client sent something the provider would accept.
"""

from __future__ import annotations

from llmswitch.testing._counting import fake_token_count
from llmswitch.testing._recorded import RecordedRequest
from llmswitch.testing._reply import (
    Reply,
    ToolCallSpec,
    embedding_vector,
    to_error,
    to_response,
    to_stream_events,
)
from llmswitch.testing._upstream import FakeUpstream, Responder

__all__ = [
    "FakeUpstream",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ToolCallSpec",
    "embedding_vector",
    "fake_token_count",
    "to_error",
    "to_response",
    "to_stream_events",
]
