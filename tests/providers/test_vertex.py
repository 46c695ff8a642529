"""Vertex AI (``vertex_ai/<model>``): Gemini's wire format under a project's publisher path, with an OAuth
token that a service account's key is exchanged for, fetched once and refreshed before it expires.

The fake upstream plays both Google's token endpoint (it issues tokens for JWT-bearer grants) and
Vertex AI (it answers only calls that carry a token it issued).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import llmswitch
from llmswitch.errors import AuthenticationError
from llmswitch.providers import get_provider
from llmswitch.testing import FakeUpstream, Reply

PROJECT, LOCATION = "test-project-7", "europe-west4"
MSGS = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


def service_account(
    up: FakeUpstream, private_key: str, email: str = "svc@test-project-7.iam.gserviceaccount.com"
) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "k1",
            "private_key": private_key,
            "client_email": email,
            "client_id": "1",
            "token_uri": up.token_uri,
        }
    )


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def call(up: FakeUpstream, sa: str, **kw: Any) -> Any:
    return llmswitch.completion(
        "vertex_ai/gemini-2.5-flash",
        MSGS,
        vertex_project=PROJECT,
        vertex_location=LOCATION,
        vertex_credentials=sa,
        api_base=up.vertex_base,
        num_retries=0,
        **kw,
    )


def jwt_claims(assertion: str) -> dict[str, Any]:
    payload = assertion.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def test_a_call_goes_to_the_project_publisher_path_with_the_token_the_key_was_exchanged_for(
    up: FakeUpstream, private_key: str
) -> None:
    sa = service_account(up, private_key, email="first@test-project-7.iam.gserviceaccount.com")
    up.script(Reply(text="Bonjour"))
    r = call(up, sa)
    assert r.choices[0].message.content == "Bonjour"
    [rec] = up.requests
    assert (
        rec.path
        == f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    assert rec.headers["authorization"] == f"Bearer {up.tokens[0]}"
    assert "x-goog-api-key" not in rec.headers
    # Gemini's body, without the Vertex settings (they say where and as whom, not what)
    assert rec.json["contents"] == [{"role": "user", "parts": [{"text": "Hello"}]}]
    assert not any(k.startswith("vertex") for k in rec.json)


def test_the_token_is_fetched_once_and_shared_until_it_nears_expiry(up: FakeUpstream, private_key: str) -> None:
    sa = service_account(up, private_key, email="shared@test-project-7.iam.gserviceaccount.com")
    for _ in range(3):
        call(up, sa)
    assert len(up.tokens) == 1

    async def together() -> None:
        await asyncio.gather(
            *(
                llmswitch.acompletion(
                    "vertex_ai/gemini-2.5-flash",
                    MSGS,
                    vertex_project=PROJECT,
                    vertex_location=LOCATION,
                    vertex_credentials=sa,
                    api_base=up.vertex_base,
                    num_retries=0,
                )
                for _ in range(8)
            )
        )

    asyncio.run(together())
    assert len(up.tokens) == 1  # eight calls at once shared the token they had


def test_a_token_about_to_expire_is_refreshed_before_the_call(up: FakeUpstream, private_key: str) -> None:
    up.token_ttl = 60  # inside the five minutes a token is refreshed ahead of its expiry
    sa = service_account(up, private_key, email="short@test-project-7.iam.gserviceaccount.com")
    call(up, sa)
    call(up, sa)
    assert len(up.tokens) == 2
    assert up.requests[-1].headers["authorization"] == f"Bearer {up.tokens[1]}"


def test_a_streamed_answer_uses_the_sse_method(up: FakeUpstream, private_key: str) -> None:
    sa = service_account(up, private_key, email="stream@test-project-7.iam.gserviceaccount.com")
    up.script(Reply(text="one two three"))
    text = "".join(c.choices[0].delta.content or "" for c in call(up, sa, stream=True) if c.choices)
    assert text == "one two three"
    [rec] = up.requests
    assert rec.path.endswith(":streamGenerateContent") and rec.query.get("alt") == "sse"


def test_refused_credentials_are_an_authentication_error(up: FakeUpstream, private_key: str) -> None:
    up.refuse_tokens = True
    sa = service_account(up, private_key, email="refused@test-project-7.iam.gserviceaccount.com")
    with pytest.raises(AuthenticationError) as err:
        call(up, sa)
    assert err.value.status_code == 401 and "refused" in str(err.value)
    assert up.requests == []  # nothing was sent to Vertex without a token


def test_the_grant_is_a_jwt_for_the_service_account_with_the_cloud_platform_scope(
    up: FakeUpstream, private_key: str
) -> None:
    sa = service_account(up, private_key, email="claims@test-project-7.iam.gserviceaccount.com")
    call(up, sa)
    [assertion] = up.grants
    header = json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "=="))
    claims = jwt_claims(assertion)
    assert header["alg"] == "RS256"
    assert claims["iss"] == "claims@test-project-7.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    # Google's token endpoint is the audience its service accounts sign for (google-auth's choice)
    assert claims["aud"] == "https://oauth2.googleapis.com/token"
    assert 0 < claims["exp"] - claims["iat"] <= 3600


@pytest.mark.parametrize(
    ("location", "root"),
    [("us-central1", "https://us-central1-aiplatform.googleapis.com"), ("global", "https://aiplatform.googleapis.com")],
)
def test_the_default_root_is_the_location_s_regional_host(location: str, root: str, private_key: str) -> None:
    sa = json.dumps(
        {
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k",
            "private_key": private_key,
            "client_email": f"{location}@p.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
    ep = get_provider("vertex_ai").endpoint(settings={"vertex_location": location, "vertex_credentials": sa})
    # the project comes from the key when not given
    assert ep.api_base == f"{root}/v1/projects/p/locations/{location}/publishers/google"


def test_a_credentials_value_that_is_neither_json_nor_a_file_is_a_config_error() -> None:
    with pytest.raises(llmswitch.ConfigError, match="neither a JSON key nor a file"):
        get_provider("vertex_ai").endpoint(settings={"vertex_project": "p", "vertex_credentials": "/no/such/key.json"})


def test_claude_on_vertex_speaks_anthropic_s_api_at_raw_predict(up: FakeUpstream, private_key: str) -> None:
    sa = service_account(up, private_key, email="claude@test-project-7.iam.gserviceaccount.com")
    up.script(Reply(text="Claude here", usage=(6, 2)), Reply(text="streamed Claude"))
    kw: dict[str, Any] = {
        "vertex_project": PROJECT,
        "vertex_location": LOCATION,
        "vertex_credentials": sa,
        "api_base": up.vertex_base,
    }
    r = llmswitch.completion("vertex_ai/claude-sonnet-4@20250514", MSGS, num_retries=0, max_tokens=30, **kw)
    assert r.choices[0].message.content == "Claude here"
    chunks = llmswitch.completion("vertex_ai/claude-sonnet-4@20250514", MSGS, stream=True, num_retries=0, **kw)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed Claude"
    whole, streamed = up.requests
    base = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/anthropic/models/claude-sonnet-4@20250514"
    assert whole.path == f"{base}:rawPredict" and streamed.path == f"{base}:streamRawPredict"
    assert whole.json["anthropic_version"] == "vertex-2023-10-16" and "model" not in whole.json
    assert whole.json["max_tokens"] == 30 and "stream" not in whole.json and streamed.json["stream"] is True
    # one token for Gemini and Claude models alike: the credentials are the same
    assert whole.headers["authorization"] == streamed.headers["authorization"] == f"Bearer {up.tokens[0]}"


def test_claude_on_vertex_takes_what_anthropic_takes(up: FakeUpstream, private_key: str) -> None:
    sa = service_account(up, private_key, email="policy@test-project-7.iam.gserviceaccount.com")
    # top_k and parallel_tool_calls: Anthropic's API takes them (Gemini's policy would refuse the latter)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    llmswitch.completion(
        "vertex_ai/claude-sonnet-4@20250514",
        MSGS,
        vertex_project=PROJECT,
        vertex_credentials=sa,
        api_base=up.vertex_base,
        num_retries=0,
        top_k=3,
        tools=tools,
        parallel_tool_calls=False,
    )
    body = up.requests[0].json
    assert body["top_k"] == 3 and body["tool_choice"]["disable_parallel_tool_use"] is True
