"""llmswitch: one OpenAI-shaped API to every major LLM provider.

    >>> import llmswitch
    >>> r = llmswitch.completion("openai/gpt-4o", [{"role": "user", "content": "Hi"}])
    >>> r.choices[0].message.content

Everything is imported lazily, so ``import llmswitch`` stays fast; the HTTP client and the
provider modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# LiteLLM's file and batch calls (llmswitch.sdk_batches)
_BATCH_CALLS = (
    "create_file",
    "acreate_file",
    "file_content",
    "afile_content",
    "create_batch",
    "acreate_batch",
    "retrieve_batch",
    "aretrieve_batch",
    "list_batches",
    "alist_batches",
    "cancel_batch",
    "acancel_batch",
)
_EXPORTS: dict[str, str] = {
    "completion": "llmswitch.sdk",
    "acompletion": "llmswitch.sdk",
    "embedding": "llmswitch.sdk_embeddings",
    "aembedding": "llmswitch.sdk_embeddings",
    "token_counter": "llmswitch.sdk_embeddings",
    "atoken_counter": "llmswitch.sdk_embeddings",
    "responses": "llmswitch.responses_api",
    "aresponses": "llmswitch.responses_api",
    "function_tool": "llmswitch.tools",
    "run_tools": "llmswitch.tools",
    "arun_tools": "llmswitch.tools",
    "register_provider": "llmswitch.providers",
    "ModelResponse": "llmswitch.results",
    "ModelResponseStream": "llmswitch.results",
    "EmbeddingResponse": "llmswitch.results",
    "stream_chunk_builder": "llmswitch.tools",
    "Router": "llmswitch.router.router",
    "Cache": "llmswitch.cache.sdk",
    "completion_cost": "llmswitch.cost",
    **dict.fromkeys(_BATCH_CALLS, "llmswitch.sdk_batches"),
}
_ERRORS = (
    "LLMSwitchError",
    "ConfigError",
    "ResponseParseError",
    "MaxStepsExceededError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIResponseValidationError",
    "APIStatusError",
    "BadRequestError",
    "ContextWindowExceededError",
    "ContentPolicyViolationError",
    "UnsupportedParamsError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "InternalServerError",
    "ServiceUnavailableError",
)
_EXPORTS.update(dict.fromkeys(_ERRORS, "llmswitch.errors"))

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Cache",
    "ConfigError",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "EmbeddingResponse",
    "InternalServerError",
    "LLMSwitchError",
    "MaxStepsExceededError",
    "ModelResponse",
    "ModelResponseStream",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseParseError",
    "Router",
    "ServiceUnavailableError",
    "UnsupportedParamsError",
    "__version__",
    "acancel_batch",
    "acompletion",
    "acreate_batch",
    "acreate_file",
    "aembedding",
    "afile_content",
    "alist_batches",
    "aresponses",
    "aretrieve_batch",
    "arun_tools",
    "atoken_counter",
    "cancel_batch",
    "completion",
    "completion_cost",
    "create_batch",
    "create_file",
    "embedding",
    "file_content",
    "function_tool",
    "list_batches",
    "register_provider",
    "responses",
    "retrieve_batch",
    "run_tools",
    "stream_chunk_builder",
    "token_counter",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmswitch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from llmswitch.cache.sdk import Cache
    from llmswitch.cost import completion_cost
    from llmswitch.errors import (
        APIConnectionError,
        APIError,
        APIResponseValidationError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConfigError,
        ContentPolicyViolationError,
        ContextWindowExceededError,
        InternalServerError,
        LLMSwitchError,
        MaxStepsExceededError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ResponseParseError,
        ServiceUnavailableError,
        UnsupportedParamsError,
    )
    from llmswitch.providers import register_provider
    from llmswitch.responses_api import aresponses, responses
    from llmswitch.results import EmbeddingResponse, ModelResponse, ModelResponseStream
    from llmswitch.sdk import acompletion, completion
    from llmswitch.sdk_batches import (
        acancel_batch,
        acreate_batch,
        acreate_file,
        afile_content,
        alist_batches,
        aretrieve_batch,
        cancel_batch,
        create_batch,
        create_file,
        file_content,
        list_batches,
        retrieve_batch,
    )
    from llmswitch.sdk_embeddings import aembedding, atoken_counter, embedding, token_counter
    from llmswitch.tools import arun_tools, function_tool, run_tools, stream_chunk_builder
