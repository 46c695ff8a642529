"""Google Cloud credentials for Vertex AI: an OAuth 2.0 access token, fetched and refreshed before it expires.

What LiteLLM users pass as ``vertex_credentials`` (a service-account key file's path, its JSON text, or the
parsed object; authorized-user and external-account files too), else Application Default Credentials
(``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's login, the metadata server). The token exchange is
google-auth's (the ``vertex`` extra): a service account's signed JWT-bearer grant at its ``token_uri``.
It runs in a thread, once per token (about an hour), never on the event loop; concurrent calls wait for
the one refresh in flight.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from llmswitch.errors import APIConnectionError, AuthenticationError, ConfigError
from llmswitch.providers.base import HTTPCall

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# a token is refreshed this long before it expires, so no call goes out with one about to lapse
REFRESH_MARGIN_S = 300.0


def _google_auth() -> Any:
    try:
        import google.auth
        import google.auth.transport.requests
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ConfigError("Vertex AI needs google-auth: pip install 'llmswitch[vertex]'") from exc
    return google.auth


def load_credentials(source: Any, provider: str) -> tuple[Any, str | None]:
    """(google-auth credentials, the project they name) from ``vertex_credentials`` or the environment.

    A key given here is read by its type's own loader (a service account, an authorized user); other
    kinds of configuration (workload identity federation) go through ``GOOGLE_APPLICATION_CREDENTIALS``,
    which Application Default Credentials read as Google documents."""
    ga = _google_auth()
    try:
        if source is None or source == "":
            creds, project = ga.default(scopes=SCOPES)
            return creds, project
        if isinstance(source, str):
            text = source.strip()
            if text.startswith("{"):
                info = json.loads(text)
            elif os.path.isfile(os.path.expanduser(text)):
                with open(os.path.expanduser(text), encoding="utf-8") as f:
                    info = json.load(f)
            else:
                raise ConfigError(f"{provider}: vertex_credentials is neither a JSON key nor a file: {text[:40]!r}")
        elif isinstance(source, Mapping):
            info = dict(source)
        else:
            raise ConfigError(f"{provider}: vertex_credentials must be a JSON key, its path, or a mapping")
        if not isinstance(info, dict):
            raise ConfigError(f"{provider}: vertex_credentials must be a JSON object")
        kind = info.get("type")
        if kind == "service_account":
            from google.oauth2 import service_account

            creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)  # type: ignore[no-untyped-call]
            return creds, info.get("project_id")
        if kind == "authorized_user":
            from google.oauth2 import credentials as user_credentials

            creds = user_credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)  # type: ignore[no-untyped-call]
            return creds, info.get("quota_project_id")
        raise ConfigError(
            f"{provider}: vertex_credentials of type {kind!r} are not read here; point "
            "GOOGLE_APPLICATION_CREDENTIALS at the file instead (service_account and authorized_user keys are)"
        )
    except ConfigError:
        raise
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{provider}: vertex_credentials is not valid JSON ({exc})") from exc
    except Exception as exc:  # google.auth.exceptions.DefaultCredentialsError, a malformed key
        raise AuthenticationError(
            f"{provider}: no usable Google credentials ({exc})", status_code=401, provider=provider
        ) from exc


class GoogleToken:
    """An :class:`~llmswitch.providers.base.Authorizer` that adds ``Authorization: Bearer <token>``."""

    def __init__(self, credentials: Any, provider: str, project: str | None = None) -> None:
        self.credentials = credentials  # None: Application Default Credentials, found at the first refresh
        self.provider = provider
        self.project = project  # the one the credentials name, if any
        self._token: str | None = None
        self._expires_at = 0.0  # time.time() seconds
        self._refreshing: asyncio.Future[str] | None = None

    async def authorize(self, call: HTTPCall) -> HTTPCall:
        token = self._token
        if token is None or time.time() >= self._expires_at - REFRESH_MARGIN_S:
            token = await self._refresh()
        return call._replace(headers={**call.headers, "authorization": f"Bearer {token}"})

    async def _refresh(self) -> str:
        pending = self._refreshing
        if pending is None or pending.done():
            pending = self._refreshing = asyncio.ensure_future(asyncio.to_thread(self._refresh_now))
        # shielded: one caller's timeout must not cancel the refresh the others wait for
        return await asyncio.shield(pending)

    def _refresh_now(self) -> str:
        ga = _google_auth()
        from google.auth import exceptions

        if self.credentials is None:
            self.credentials, self.project = load_credentials(None, self.provider)
        try:
            self.credentials.refresh(ga.transport.requests.Request())
        except exceptions.RefreshError as exc:
            raise AuthenticationError(
                f"{self.provider}: Google refused the credentials ({exc})", status_code=401, provider=self.provider
            ) from exc
        except exceptions.TransportError as exc:
            raise APIConnectionError(
                f"{self.provider}: could not reach Google's token endpoint ({exc})", provider=self.provider
            ) from exc
        token = self.credentials.token
        if not token:
            raise AuthenticationError(
                f"{self.provider}: Google's token endpoint gave no token", status_code=401, provider=self.provider
            )
        expiry = getattr(self.credentials, "expiry", None)  # naive UTC datetime
        if expiry is not None:
            self._expires_at = expiry.replace(tzinfo=UTC).timestamp()
        else:
            self._expires_at = time.time() + 3000.0
        self._token = token
        return str(token)
