"""The in-process origin behind llamacpp:// URLs, reached through the transport (no model needed here)."""

from __future__ import annotations

import asyncio
import json

from llmswitch import transport
from llmswitch.local.origin import SCHEME, LlamaCppOrigin, call_url
from llmswitch.local.runtime import LoadOptions
from llmswitch.providers.base import HTTPCall

URL = call_url(LoadOptions("/nowhere/model.gguf"))


def test_calls_to_the_scheme_are_answered_in_process_with_openai_errors() -> None:
    transport.mount(SCHEME, LlamaCppOrigin())

    async def go() -> None:
        raw = await transport.send(HTTPCall(URL, {}, b"{not json"), timeout=5, provider="llamacpp")
        assert raw.status == 400
        assert "not JSON" in json.loads(raw.body)["error"]["message"]

        body = json.dumps({"model": "m", "messages": [], "stream": True}).encode()
        resp = await transport.open_stream(HTTPCall(URL, {}, body), timeout=5, provider="llamacpp")
        assert resp.status == 400
        error = json.loads(await resp.read())["error"]
        assert error["param"] == "messages" and error["type"] == "invalid_request_error"

        no_path = HTTPCall(f"{SCHEME}://chat/completions", {}, b'{"messages": []}')
        assert (await transport.send(no_path, timeout=5, provider="llamacpp")).status == 400

    asyncio.run(go())
