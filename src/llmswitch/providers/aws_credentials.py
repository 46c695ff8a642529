"""AWS credentials and Signature Version 4 for Bedrock, with botocore (the ``bedrock`` extra).

What LiteLLM users pass, in its order: ``aws_access_key_id`` / ``aws_secret_access_key`` /
``aws_session_token``; ``aws_role_name`` (with ``aws_session_name``, ``aws_external_id``) assumed through
STS, from ``aws_web_identity_token`` when given (``os.environ/…`` names a variable; a path is read);
``aws_profile_name`` from the shared files; else botocore's default chain (the environment, the shared
files, SSO, the container and instance metadata services). Credentials that expire (an assumed role, a
profile's SSO, instance roles) are refreshed by botocore, in a thread, never on the event loop.

Each attempt is signed anew (the signature covers the time and the exact body): ``Authorization:
AWS4-HMAC-SHA256 …``, ``X-Amz-Date`` and ``X-Amz-Security-Token`` for temporary credentials. A Bedrock
API key (``api_key=``, ``AWS_BEARER_TOKEN_BEDROCK``) is sent as ``Authorization: Bearer`` instead.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from llmswitch.errors import AuthenticationError, ConfigError
from llmswitch.providers.base import HTTPCall

SERVICE = "bedrock"


def _botocore() -> Any:
    try:
        import botocore.session
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ConfigError("Amazon Bedrock needs botocore: pip install 'llmswitch[bedrock]'") from exc
    return botocore


def region_of(settings: Mapping[str, Any]) -> str:
    return str(
        settings.get("aws_region_name")
        or settings.get("region_name")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or os.environ.get("AWS_REGION_NAME")
        or "us-east-1"
    )


class SigV4:
    """An :class:`~llmswitch.providers.base.Authorizer` signing each call for ``bedrock`` in ``region``."""

    def __init__(self, settings: Mapping[str, Any], region: str, provider: str) -> None:
        self.settings = dict(settings)
        self.region = region
        self.provider = provider
        self._credentials: Any = None
        key, secret = settings.get("aws_access_key_id"), settings.get("aws_secret_access_key")
        if key or secret:
            if not (key and secret):
                raise ConfigError(f"{provider}: aws_access_key_id and aws_secret_access_key go together")
            _botocore()
            from botocore.credentials import Credentials

            self._credentials = Credentials(str(key), str(secret), settings.get("aws_session_token"))
        self._lock = asyncio.Lock()

    async def authorize(self, call: HTTPCall) -> HTTPCall:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        frozen = await self._frozen()
        headers = {k: v for k, v in call.headers.items() if k.lower() != "authorization"}
        request = AWSRequest(method=call.method, url=call.url, data=call.body, headers=headers)
        SigV4Auth(frozen, SERVICE, self.region).add_auth(request)
        return call._replace(headers=dict(request.headers.items()))

    async def _frozen(self) -> Any:
        creds = self._credentials
        if creds is None:
            async with self._lock:
                if self._credentials is None:
                    self._credentials = await asyncio.to_thread(self._resolve)
            creds = self._credentials
        refresh_needed = getattr(creds, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            # a refresh may call STS or a metadata service: in a thread, one at a time
            async with self._lock:
                return await asyncio.to_thread(creds.get_frozen_credentials)
        return creds.get_frozen_credentials()

    def _resolve(self) -> Any:
        """Credentials by LiteLLM's settings, else botocore's default chain (may use the network)."""
        botocore = _botocore()
        s = self.settings
        profile = s.get("aws_profile_name")
        session = botocore.session.Session(profile=str(profile) if profile else None)
        role = s.get("aws_role_name")
        try:
            if role:
                return self._assumed(session, str(role))
            creds = session.get_credentials()
        except Exception as exc:
            raise AuthenticationError(
                f"{self.provider}: could not get AWS credentials ({exc})", status_code=401, provider=self.provider
            ) from exc
        if creds is None:
            raise AuthenticationError(
                f"{self.provider}: no AWS credentials (pass aws_access_key_id/aws_secret_access_key, "
                "aws_role_name or aws_profile_name, or configure the environment)",
                status_code=401,
                provider=self.provider,
            )
        return creds

    def _assumed(self, session: Any, role: str) -> Any:
        """A role assumed through STS (from a web identity token when given), refreshed before it expires."""
        from botocore.credentials import DeferredRefreshableCredentials

        s = self.settings
        name = str(s.get("aws_session_name") or "llmswitch")
        kwargs: dict[str, Any] = {}
        if s.get("aws_sts_endpoint"):
            kwargs["endpoint_url"] = str(s["aws_sts_endpoint"])
        sts = session.create_client("sts", region_name=self.region, **kwargs)
        token = s.get("aws_web_identity_token")

        def fetch() -> dict[str, Any]:
            if token:
                text = str(token)
                if os.path.isfile(text):
                    with open(text, encoding="utf-8") as f:
                        text = f.read().strip()
                got = sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName=name, WebIdentityToken=text)
            else:
                more = {"ExternalId": str(s["aws_external_id"])} if s.get("aws_external_id") else {}
                got = sts.assume_role(RoleArn=role, RoleSessionName=name, **more)
            c = got["Credentials"]
            return {
                "access_key": c["AccessKeyId"],
                "secret_key": c["SecretAccessKey"],
                "token": c["SessionToken"],
                "expiry_time": c["Expiration"].isoformat(),
            }

        return DeferredRefreshableCredentials(refresh_using=fetch, method="assume-role")


class BearerKey:
    """Bedrock API keys: ``Authorization: Bearer <key>``, no signature."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def authorize(self, call: HTTPCall) -> HTTPCall:
        return call._replace(headers={**call.headers, "authorization": f"Bearer {self.key}"})
