"""The thin I/O shell every native batch driver shares: one deployment's endpoint, reached through the
pooled transport with the deployment's credentials and network settings; errors classified by the
provider's own dialect (:mod:`llmswitch.errors`).

    >>> api = ProviderAPI(deployment)  # doctest: +SKIP
    >>> batch = await api.json("GET", url, headers)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from llmswitch import transport
from llmswitch.dialects._json import dumps, loads
from llmswitch.engine import with_network
from llmswitch.errors import APIResponseValidationError, APIStatusError
from llmswitch.providers.base import Endpoint, HTTPCall

if TYPE_CHECKING:
    from llmswitch.router.deployments import Target

# a batch's control calls are small; an upload or a results file may take longer
CALL_TIMEOUT = 60.0
TRANSFER_TIMEOUT = 600.0


class ProviderAPI:
    """HTTP calls to one deployment's provider, raising its errors as our error classes."""

    def __init__(self, deployment: Target) -> None:
        self.deployment = deployment
        self.provider = deployment.provider
        self.model = deployment.model
        timeout = deployment.timeout
        self.timeout = CALL_TIMEOUT if timeout is None else max(timeout, CALL_TIMEOUT)

    @property
    def endpoint(self) -> Endpoint:
        """The deployment's endpoint; a deployment without one (no API key) fails here, classified."""
        endpoint = self.deployment.endpoint
        if endpoint is None:
            error = self.deployment.endpoint_error
            if error is not None:
                raise error
            raise APIStatusError(f"{self.provider.name}: deployment has no endpoint", status_code=500)
        return endpoint

    async def _prepared(self, call: HTTPCall) -> HTTPCall:
        call = with_network(call, self.endpoint)
        if call.auth is not None:
            call = await call.auth.authorize(call)
        return call

    def _error(self, status: int, headers: dict[str, str], body: bytes) -> APIStatusError:
        return self.provider.decode_error(status, headers, body, model=self.model)

    async def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes = b"", *, timeout: float | None = None
    ) -> bytes:
        """The answer's body; an error status raises the provider's classified error."""
        call = await self._prepared(HTTPCall(url, headers, body, method=method))
        raw = await transport.send(call, timeout=timeout or self.timeout, provider=self.provider.name)
        if raw.status >= 400:
            raise self._error(raw.status, raw.headers, raw.body)
        return raw.body

    async def json(
        self, method: str, url: str, headers: dict[str, str], body: Any = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send ``body`` as JSON (if any) and read a JSON object back."""
        raw = await self.send(method, url, headers, b"" if body is None else dumps(body), timeout=timeout)
        return self.parse(raw)

    def parse(self, raw: bytes) -> dict[str, Any]:
        """A JSON object answer; anything else is the provider's fault (APIResponseValidationError)."""
        try:
            data = loads(raw.strip() or b"{}")
        except Exception as exc:
            raise APIResponseValidationError(
                f"{self.provider.name}: answer is not JSON: {raw[:200]!r}", provider=self.provider.name
            ) from exc
        if not isinstance(data, dict):
            raise APIResponseValidationError(
                f"{self.provider.name}: unexpected answer {raw[:200]!r}", provider=self.provider.name
            )
        return data

    async def jsonl(self, url: str, headers: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The objects of a JSONL download, one per line, read as they arrive (a results file may be
        larger than the memory one answer is allowed)."""
        call = await self._prepared(HTTPCall(url, headers, b"", method="GET"))
        resp = await transport.open_stream(call, timeout=TRANSFER_TIMEOUT, provider=self.provider.name)
        try:
            if resp.status >= 400:
                raise self._error(resp.status, resp.headers, await resp.read())
            rest = b""
            async for chunk in resp.iter_chunks():
                rest += chunk
                *whole, rest = rest.split(b"\n")
                for line in whole:
                    obj = self._line(line)
                    if obj is not None:
                        yield obj
            obj = self._line(rest)
            if obj is not None:
                yield obj
        finally:
            resp.close()

    def _line(self, line: bytes) -> dict[str, Any] | None:
        line = line.strip()
        if not line:
            return None
        try:
            obj = loads(line)
        except Exception as exc:
            raise APIResponseValidationError(
                f"{self.provider.name}: unreadable results line {line[:200]!r}", provider=self.provider.name
            ) from exc
        return obj if isinstance(obj, dict) else None
