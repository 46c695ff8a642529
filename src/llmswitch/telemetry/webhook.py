"""JSON POSTs to a webhook, from a worker thread: batched, retried, behind a bounded queue.

Used by the generic webhook callback (a batch of standard logging payloads per POST) and by alerting
(one alert per POST). A dead or hanging receiver costs the worker thread its timeout and retries, never
a request: the queue fills, then drops with a counter.

    >>> hook = WebhookSender("http://127.0.0.1:9000/log", name="webhook")  # doctest: +SKIP
    >>> hook.send({"event": "budget_crossed"})  # doctest: +SKIP
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from llmswitch.dialects._json import dumps
from llmswitch.telemetry.callbacks_queue import BoundedQueue

RETRIES = 3
TIMEOUT_S = 5.0


class WebhookError(Exception):
    """A POST the receiver did not take (after the retries)."""


class WebhookSender:
    """POST items as JSON to ``url``: a list of up to ``batch_size`` items per POST when ``batched``,
    else one item per POST. Failures (connection, timeout, 5xx, 429) are retried ``retries`` times with
    backoff; a 4xx other than 429 is not."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "webhook",
        headers: Mapping[str, str] | None = None,
        batched: bool = True,
        batch_size: int = 100,
        max_queue: int = 2048,
        interval: float = 1.0,
        retries: int = RETRIES,
        timeout: float = TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self._headers = {"content-type": "application/json", "user-agent": "llmswitch", **(headers or {})}
        self._batched = batched
        self._retries = retries
        self._timeout = timeout
        self._sleep = sleep
        self.queue = BoundedQueue(
            name, self._export, max_queue=max_queue, batch_size=batch_size if batched else 16, interval=interval
        )

    def send(self, item: Any) -> bool:
        """Queue ``item`` (a JSON-able dict); False when dropped (queue full)."""
        return self.queue.offer(item)

    def _export(self, batch: list[Any]) -> None:
        if self._batched:
            self._post(dumps(batch))
            return
        failed: Exception | None = None
        for item in batch:
            try:
                self._post(dumps(item))
            except WebhookError as exc:
                failed = exc
        if failed is not None:
            raise failed

    def _post(self, body: bytes) -> None:
        last: str = ""
        for attempt in range(self._retries + 1):
            if attempt:
                self._sleep(min(0.25 * 2**attempt, 4.0))
            req = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                    resp.read()
                return
            except urllib.error.HTTPError as exc:
                last = f"status {exc.code}"
                if exc.code < 500 and exc.code != 429:
                    break
            except (OSError, ValueError) as exc:  # refused, reset, timed out, a bad URL
                last = type(exc).__name__
        raise WebhookError(f"POST to the webhook failed: {last}")

    def flush(self, timeout: float = 5.0) -> bool:
        return self.queue.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.queue.close(timeout)


def parse_headers(raw: str | None) -> dict[str, str]:
    """``"name=value,other=value"`` (LiteLLM's ``GENERIC_LOGGER_HEADERS``) as a dict."""
    out: dict[str, str] = {}
    for part in (raw or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out
