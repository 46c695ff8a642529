"""Models run inside this process: GGUF files on llama.cpp (``llamacpp/<model>``), no server needed.

The ``llamacpp`` provider (:mod:`llmswitch.providers.llamacpp`) speaks OpenAI's chat format to an
in-process origin mounted on the transport (:mod:`llmswitch.local.origin`), so the SDK, the router and the
gateway's fast path treat a local model like any OpenAI-compatible server. Generation runs on one worker
thread per loaded model (:mod:`llmswitch.local.runtime`): llama.cpp's context is not thread-safe, so one
model answers one request at a time and the rest wait in line, and the event loop never blocks on it.

    >>> import llmswitch
    >>> r = llmswitch.completion(model="llamacpp/smollm2-135m-instruct",  # doctest: +SKIP
    ...                          messages=[{"role": "user", "content": "Hi"}])
"""
