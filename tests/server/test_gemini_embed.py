"""Gemini's ``:embedContent`` and ``:batchEmbedContents`` on the gateway, google-genai as the client, any
embedding deployment behind it (an OpenAI embedding model, a Gemini one)."""

from __future__ import annotations

import pytest
from gateway_harness import GROUPS, MASTER_KEY, UPSTREAM_KEYS, UPSTREAM_MODELS, ServedGateway, dialect_error
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from llmswitch.testing import FakeUpstream, Reply, embedding_vector


def _client(gw: ServedGateway, key: str = MASTER_KEY) -> genai.Client:
    return genai.Client(api_key=key, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"))


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_genai_embed_content_through_any_embedding_deployment(
    gw: ServedGateway, up: FakeUpstream, provider: str
) -> None:
    with _client(gw) as client:
        r = client.models.embed_content(model=GROUPS[provider], contents=["alpha", "beta"])
        short = client.models.embed_content(
            model=GROUPS[provider], contents="alpha", config=gtypes.EmbedContentConfig(output_dimensionality=4)
        )
    # google-genai sends a list of strings to a model named like "*gemini*" as one content of several
    # parts (a multimodal embedding model's input), which embeds as one text
    texts = ["alphabeta"] if "gemini" in GROUPS[provider] else ["alpha", "beta"]
    assert [e.values for e in r.embeddings or []] == [embedding_vector(t, 8) for t in texts]
    assert [e.values for e in short.embeddings or []] == [embedding_vector("alpha", 4)]
    if provider == "openai":
        assert [(q.path, q.json["input"]) for q in up.requests] == [
            ("/v1/embeddings", texts),
            ("/v1/embeddings", ["alpha"]),
        ]
        assert up.requests[1].json["dimensions"] == 4
        assert up.requests[0].headers["authorization"] == f"Bearer {UPSTREAM_KEYS['openai']}"
    else:
        path = f"/v1beta/models/{UPSTREAM_MODELS['gemini']}:batchEmbedContents"
        assert {q.path for q in up.requests} == {path}


def test_single_embed_content_over_raw_http(gw: ServedGateway, up: FakeUpstream) -> None:
    # google-genai always batches against AI Studio; other clients (and the REST docs) use :embedContent
    body = {"content": {"parts": [{"text": "alp"}, {"text": "ha"}]}, "outputDimensionality": 6}
    r = gw.call("POST", f"/v1beta/models/{GROUPS['openai']}:embedContent", body)
    assert r.status == 200, r.body
    assert r.json() == {"embedding": {"values": embedding_vector("alpha", 6)}}
    assert r.headers["x-llmswitch-deployment"]
    batch = {"requests": [{"model": "models/x", "content": {"parts": [{"text": "beta"}]}}]}
    r = gw.call("POST", f"/v1/models/{GROUPS['openai']}:batchEmbedContents", batch)
    assert r.status == 200, r.body
    assert r.json() == {"embeddings": [{"values": embedding_vector("beta", 8)}]}


def test_embedding_is_authenticated_and_limited_to_the_keys_models(gw: ServedGateway, up: FakeUpstream) -> None:
    body = {"content": {"parts": [{"text": "alpha"}]}}
    r = gw.call("POST", f"/v1beta/models/{GROUPS['openai']}:embedContent", body, key=None)
    assert r.status == 401, r.body
    assert dialect_error("gemini", r)[0] == "UNAUTHENTICATED"
    key = gw.new_key(models=[GROUPS["gemini"]])
    with _client(gw, key) as client, pytest.raises(genai_errors.ClientError) as caught:
        client.models.embed_content(model=GROUPS["openai"], contents="alpha")
    assert caught.value.code in (401, 403)
    assert up.requests == []


def test_what_cannot_be_embedded_is_refused_in_geminis_format(gw: ServedGateway, up: FakeUpstream) -> None:
    task = {"content": {"parts": [{"text": "alpha"}]}, "taskType": "RETRIEVAL_QUERY"}
    r = gw.call("POST", f"/v1beta/models/{GROUPS['openai']}:embedContent", task)
    assert r.status == 400
    status, message = dialect_error("gemini", r)
    assert status == "INVALID_ARGUMENT" and "taskType" in message
    r = gw.call("POST", f"/v1beta/models/{GROUPS['openai']}:batchEmbedContents", {"requests": []})
    assert r.status == 400 and "requests" in dialect_error("gemini", r)[1]
    r = gw.call("POST", f"/v1beta/models/{GROUPS['anthropic']}:embedContent", {"content": {"parts": [{"text": "a"}]}})
    assert r.status == 400 and "embeddings" in dialect_error("gemini", r)[1]
    assert up.requests == []


def test_an_upstream_error_reaches_the_genai_client(gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(status=429, message="slow down", retry_after=0))
    opts = gtypes.HttpOptions(base_url=gw.url, api_version="v1beta", retry_options=gtypes.HttpRetryOptions(attempts=1))
    with genai.Client(api_key=MASTER_KEY, http_options=opts) as client, pytest.raises(genai_errors.ClientError) as e:
        client.models.embed_content(model=GROUPS["openai"], contents="alpha")
    assert e.value.code == 429
