"""Custom callbacks: an object with LiteLLM's ``CustomLogger`` hooks, named in the config by dotted path.

    # custom_callbacks.py, beside config.yaml
    class MyLogger:                      # or litellm.integrations.custom_logger.CustomLogger's subclass
        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time): ...
        async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time): ...
        async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type): return data
        async def async_post_call_success_hook(self, data, user_api_key_dict, response): ...
    proxy_handler_instance = MyLogger()

    litellm_settings:
      callbacks: custom_callbacks.proxy_handler_instance

The module is imported from the config file's directory first, as LiteLLM does. Each hook is optional.
The log hooks and the post-call hook run on the event loop as tasks of their own, at most
:data:`MAX_PENDING` at once (more are dropped, counted); the pre-call hook runs on the request path, as it
may change the request or refuse it.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from llmswitch.errors import ConfigError

log = logging.getLogger("llmswitch.telemetry")

MAX_PENDING = 1000
HOOKS = ("async_log_success_event", "async_log_failure_event", "async_pre_call_hook", "async_post_call_success_hook")


def load_custom(path: str, base_dir: str | None = None) -> Any:
    """The object at ``module.attribute`` (``module`` looked up in ``base_dir`` first)."""
    module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"callback {path!r}: expected 'module.instance'")
    added = False
    if base_dir and base_dir not in sys.path:
        sys.path.insert(0, base_dir)
        added = True
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"callback {path!r}: cannot import {module_name!r} ({exc})") from exc
    finally:
        if added:
            sys.path.remove(base_dir)  # type: ignore[arg-type]
    try:
        obj = getattr(module, attr)
    except AttributeError as exc:
        raise ConfigError(f"callback {path!r}: {module_name!r} has no {attr!r}") from exc
    if inspect.isclass(obj):
        obj = obj()
    if not any(callable(getattr(obj, hook, None)) for hook in HOOKS):
        raise ConfigError(f"callback {path!r} has none of LiteLLM's CustomLogger hooks ({', '.join(HOOKS)})")
    return obj


class KeyInfo:
    """What a custom hook learns of the caller's key (LiteLLM's ``UserAPIKeyAuth``): the key's hash in
    ``api_key`` and ``token``, never the key."""

    def __init__(self, principal: Any) -> None:
        rec = getattr(principal, "record", None)
        self.api_key = self.token = getattr(principal, "key_hash", None)
        self.key_alias = getattr(rec, "key_alias", None)
        self.user_id = getattr(rec, "user_id", None)
        self.team_id = getattr(rec, "team_id", None)
        self.models = list(getattr(rec, "models", None) or ())
        self.metadata = dict(getattr(rec, "metadata", None) or {})

    def __repr__(self) -> str:
        return f"<KeyInfo alias={self.key_alias!r} user={self.user_id!r} team={self.team_id!r}>"


class CustomCallbacks:
    """The custom loggers of a config, split by what each does; their failures are logged, never the
    request's (except a pre-call hook's refusal, which is its purpose)."""

    def __init__(self, success: list[Any], failure: list[Any]) -> None:
        self.success = [c for c in success if _has(c, "async_log_success_event")]
        self.failure = [c for c in failure if _has(c, "async_log_failure_event")]
        every = _unique([*success, *failure])
        self.pre_call = [c for c in every if _has(c, "async_pre_call_hook")]
        self.post_call = [c for c in every if _has(c, "async_post_call_success_hook")]
        self.pending: set[asyncio.Task[Any]] = set()
        self.dropped = 0
        self.failed = 0
        self._warned = 0.0

    def __bool__(self) -> bool:
        return bool(self.success or self.failure or self.pre_call or self.post_call)

    async def run_pre_call(self, principal: Any, data: dict[str, Any], call_type: str) -> dict[str, Any]:
        """Each pre-call hook in turn; a returned dict replaces the request body, an exception refuses it."""
        key = KeyInfo(principal)
        for hook in self.pre_call:
            changed = await hook.async_pre_call_hook(key, None, data, call_type)
            if isinstance(changed, dict):
                data = changed
        return data

    def notify(self, ok: bool, kwargs: dict[str, Any], response: Any, start: Any, end: Any) -> None:
        """Schedule the log hooks (and the post-call hook of a success) off the request path."""
        name = "async_log_success_event" if ok else "async_log_failure_event"
        for cb in self.success if ok else self.failure:
            self._spawn(getattr(cb, name), kwargs, response, start, end)
        if ok and self.post_call:
            key = kwargs.get("user_api_key_dict")
            for cb in self.post_call:
                self._spawn(cb.async_post_call_success_hook, kwargs, key, response)

    def _spawn(self, hook: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.dropped += 1
            self._warn("too many callbacks pending: dropped one")
            return
        try:
            task = asyncio.get_running_loop().create_task(self._run(hook, args))
        except RuntimeError:
            return
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _run(self, hook: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await hook(*args)
        except Exception as exc:
            self.failed += 1
            self._warn(f"a custom callback failed: {type(exc).__name__}: {exc}")

    async def drain(self, timeout: float = 5.0) -> None:
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=timeout)

    def _warn(self, what: str) -> None:
        now = time.monotonic()
        if now - self._warned >= 60.0:
            self._warned = now
            log.warning("%s (dropped %d, failed %d so far)", what, self.dropped, self.failed)


def _has(obj: Any, name: str) -> bool:
    fn = getattr(obj, name, None)
    if not callable(fn):
        return False
    # LiteLLM's CustomLogger base defines every hook as a no-op: only overridden ones are worth a task
    base = getattr(type(obj), "__mro__", ())
    for cls in base:
        if name in vars(cls):
            return not (cls.__name__ == "CustomLogger" and cls.__module__.startswith("litellm."))
    return True


def _unique(items: list[Any]) -> list[Any]:
    seen: set[int] = set()
    out = []
    for item in items:
        if id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return out
