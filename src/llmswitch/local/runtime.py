"""GGUF models loaded in this process with llama-cpp-python, each run by its own single worker thread.

llama.cpp's context (the KV cache, the sampler) belongs to one caller at a time, so every use of a
loaded model goes through one thread: requests for the same model wait in line (first come, first
served) and never share its state, while the event loop only awaits. A request is stopped between two
tokens when its caller goes away (a timeout, a client that disconnected, a stream left early), so a
waiting request does not sit behind an answer nobody reads.

Usage is counted from the tokens themselves: ``prompt_tokens`` is the length of the prompt as the
model's chat template and tokenizer made it, ``completion_tokens`` the tokens sampled (the end-of-turn
token not counted, as llama-cpp-python counts them), the same for a whole and for a streamed answer.

    >>> model = loaded_model(LoadOptions("/models/smollm2.gguf"))  # doctest: +SKIP
    >>> await model.complete({"model": "smollm2", "messages": [...]})  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

from llmswitch.local.requests import GenerationError, completion_kwargs


class LoadOptions(NamedTuple):
    """How a model file is loaded; one loaded model per distinct value."""

    path: str
    n_ctx: int = 4096  # the context window in tokens (llama-cpp-python's own default, 512, is too short)
    n_threads: int | None = None  # None: llama-cpp-python's choice (half the cores)
    n_gpu_layers: int = 0
    chat_format: str | None = None  # None: the chat template inside the GGUF file


class _Stopped(Exception):
    """Raised inside the generation loop when the request's caller has gone."""


class _Run:
    """One request's state, shared by the event loop (``cancel``) and the worker (the counts)."""

    __slots__ = ("cancel", "last_token", "prompt_tokens", "sampled")

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.prompt_tokens = 0
        self.sampled = 0
        self.last_token: int | None = None


_END = object()  # the last item a stream's queue receives

_models: dict[LoadOptions, LocalModel] = {}
_models_lock = threading.Lock()


def loaded_model(options: LoadOptions) -> LocalModel:
    """The process's one :class:`LocalModel` for ``options`` (loaded on its first request)."""
    with _models_lock:
        model = _models.get(options)
        if model is None:
            model = _models[options] = LocalModel(options)
        return model


class LocalModel:
    """A GGUF model and the one thread that runs it."""

    def __init__(self, options: LoadOptions) -> None:
        self.options = options
        name = os.path.basename(options.path).removesuffix(".gguf")
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llmswitch-llamacpp-{name}")
        self._llama: Any = None
        self._eog: Callable[[int], bool] = lambda token: False
        self._active: _Run | None = None  # the request being generated (read on the worker thread only)

    # -- on the event loop

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """A whole answer as an OpenAI chat completion (a dict)."""
        run = _Run()
        future = self._worker.submit(self._complete, body, run)
        try:
            return await asyncio.wrap_future(future)
        except BaseException:
            # cancelled or timed out: stop generating (or never start) for a caller that is gone
            run.cancel.set()
            future.cancel()
            raise

    def stream(self, body: dict[str, Any]) -> ChunkStream:
        """A streamed answer: OpenAI chat completion chunks as they are generated."""
        return ChunkStream(self, body)

    # -- on the worker thread

    def _llama_instance(self) -> Any:
        if self._llama is None:
            self._llama, self._eog = _load(self.options, self._watched_generate)
        return self._llama

    def _complete(self, body: dict[str, Any], run: _Run) -> dict[str, Any]:
        if run.cancel.is_set():
            raise _Stopped
        kwargs = completion_kwargs(body, _json_schema_grammar)  # a bad request is refused before any loading
        llama = self._llama_instance()
        self._active = run
        try:
            result: dict[str, Any] = llama.create_chat_completion(**kwargs, stream=False)
        except _Stopped:
            raise
        except Exception as exc:
            raise GenerationError.from_llama(exc) from exc
        finally:
            self._active = None
        result["usage"] = self._usage(run)
        return result

    def _stream(self, body: dict[str, Any], run: _Run, put: Callable[[object], None]) -> None:
        try:
            if run.cancel.is_set():
                return
            kwargs = completion_kwargs(body, _json_schema_grammar)
            llama = self._llama_instance()
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            self._active = run
            try:
                chunks: Iterator[dict[str, Any]] = llama.create_chat_completion(**kwargs, stream=True)
                last: dict[str, Any] | None = None
                for chunk in chunks:
                    put(chunk)
                    last = chunk
            except _Stopped:
                return
            except Exception as exc:
                raise GenerationError.from_llama(exc) from exc
            finally:
                self._active = None
            if include_usage and last is not None:
                put({**last, "choices": [], "usage": self._usage(run)})
            put(_END)
        except BaseException as exc:
            put(exc)

    def _usage(self, run: _Run) -> dict[str, int]:
        completion = run.sampled - (1 if run.last_token is not None and self._eog(run.last_token) else 0)
        return {
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": run.prompt_tokens + completion,
        }

    def _watched_generate(self, generate: Callable[..., Iterator[int]]) -> Callable[..., Iterator[int]]:
        """``Llama.generate`` counting the prompt and the sampled tokens, and stopping between two tokens
        once the request's caller has gone (llama-cpp-python's chat API has no hook for either)."""

        def watched(tokens: list[int], *args: Any, **kwargs: Any) -> Iterator[int]:
            run = self._active
            if run is None:
                yield from generate(tokens, *args, **kwargs)
                return
            run.prompt_tokens = len(tokens)  # before generate() reuses the list
            for token in generate(tokens, *args, **kwargs):
                if run.cancel.is_set():
                    raise _Stopped
                run.sampled += 1
                run.last_token = token
                yield token

        return watched


class ChunkStream:
    """The chunks of one streamed answer, handed from the worker thread to the event loop."""

    def __init__(self, model: LocalModel, body: dict[str, Any]) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._run = _Run()
        self._done = False
        self._future: Future[None] = model._worker.submit(model._stream, body, self._run, self._put)

    def _put(self, item: object) -> None:  # on the worker thread
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody reads this stream any more
            self._run.cancel.set()

    async def next(self) -> dict[str, Any] | None:
        """The next chunk, ``None`` after the last one; raises the generation's error."""
        if self._done:
            return None
        item = await self._queue.get()
        if item is _END:
            self._done = True
            return None
        if isinstance(item, BaseException):
            self._done = True
            raise item
        assert isinstance(item, dict)
        return item

    def close(self) -> None:
        """Stop generating (the reader has left, or has read everything)."""
        self._done = True
        self._run.cancel.set()
        self._future.cancel()


def _load(
    options: LoadOptions, watch: Callable[[Callable[..., Iterator[int]]], Callable[..., Iterator[int]]]
) -> tuple[Any, Callable[[int], bool]]:
    try:
        import llama_cpp
    except ImportError as exc:  # the provider checks first; this is for direct users of the runtime
        raise GenerationError(
            "llamacpp: llama-cpp-python is not installed: pip install 'llmswitch[llamacpp]'", 500
        ) from exc
    kwargs: dict[str, Any] = {
        "model_path": options.path,
        "n_ctx": options.n_ctx,
        "n_gpu_layers": options.n_gpu_layers,
        "verbose": False,
    }
    if options.n_threads is not None:
        kwargs["n_threads"] = options.n_threads
    if options.chat_format is not None:
        kwargs["chat_format"] = options.chat_format
    try:
        llama: Any = llama_cpp.Llama(**kwargs)
    except Exception as exc:
        raise GenerationError(f"llamacpp: could not load the model file {options.path}: {exc}", 500) from exc
    # an instance attribute shadows the method: llama-cpp-python calls self.generate() for every completion
    llama.generate = watch(llama.generate)
    vocab = getattr(getattr(llama, "_model", None), "vocab", None)
    is_eog = getattr(llama_cpp, "llama_vocab_is_eog", None)
    if vocab is not None and is_eog is not None:

        def eog(token: int) -> bool:
            return bool(is_eog(vocab, token))

    else:
        eos = llama.token_eos()

        def eog(token: int) -> bool:
            return bool(token == eos)

    return llama, eog


def _json_schema_grammar(schema: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema, verbose=False)


def error_body(exc: GenerationError) -> bytes:
    """``exc`` as OpenAI's error JSON."""
    return json.dumps(exc.openai_error()).encode()
