"""A Vertex AI deployment behind the gateway, configured as LiteLLM users write it: ``vertex_project``,
``vertex_location`` and ``vertex_credentials`` (from the environment) in ``litellm_params``. They say where
and as whom to call: they reach the token exchange and the URL, never the request body."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import anthropic
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gateway_harness import MASTER_KEY, Closing, ServedGateway

from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream) -> Iterator[ServedGateway]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    sa = {
        "type": "service_account",
        "project_id": "gw-project",
        "private_key_id": "k1",
        "private_key": pem.decode(),
        "client_email": "gateway@gw-project.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": upstream.token_uri,
    }
    os.environ["LLMSWITCH_TEST_VERTEX_SA"] = json.dumps(sa)
    other = {**sa, "client_email": "other@gw-project.iam.gserviceaccount.com"}
    os.environ["LLMSWITCH_TEST_VERTEX_SA2"] = json.dumps(other)
    config = f"""model_list:
  - model_name: on-vertex
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      vertex_project: gw-project
      vertex_location: us-east5
      vertex_credentials: os.environ/LLMSWITCH_TEST_VERTEX_SA
      api_base: "{upstream.vertex_base}"
  - model_name: vertex-other
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      vertex_project: gw-project
      vertex_credentials: os.environ/LLMSWITCH_TEST_VERTEX_SA2
      api_base: "{upstream.vertex_base}"
general_settings:
  master_key: {MASTER_KEY}
router_settings:
  num_retries: 0
"""
    try:
        with ServedGateway(config) as gateway:
            yield gateway
    finally:
        os.environ.pop("LLMSWITCH_TEST_VERTEX_SA", None)
        os.environ.pop("LLMSWITCH_TEST_VERTEX_SA2", None)


def test_openai_and_anthropic_clients_reach_a_vertex_deployment(
    gw: ServedGateway, up: FakeUpstream, closing: Closing
) -> None:
    up.script(Reply(text="from vertex", usage=(12, 3)), Reply(text="again from vertex"))
    oc = closing(openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0))
    r = oc.chat.completions.create(model="on-vertex", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "from vertex"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (12, 3)  # type: ignore[union-attr]
    ac = closing(anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0))
    m = ac.messages.create(model="on-vertex", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text == "again from vertex"  # type: ignore[union-attr]
    first, second = up.requests
    for rec in (first, second):
        assert rec.path.startswith(
            "/v1/projects/gw-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:"
        )
        assert rec.headers["authorization"].startswith("Bearer ya29.fake-")
        assert not any(k.startswith("vertex") for k in rec.json)
    assert first.headers["authorization"] == second.headers["authorization"]  # one token for both


def test_credentials_google_refuses_are_the_gateway_s_problem_not_the_client_s(
    gw: ServedGateway, up: FakeUpstream, closing: Closing
) -> None:
    up.refuse_tokens = True
    oc = closing(openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0))
    try:
        with pytest.raises(openai.APIStatusError) as err:
            oc.chat.completions.create(model="vertex-other", messages=[{"role": "user", "content": "hi"}])
    finally:
        up.refuse_tokens = False
    # the client's own key is fine: a 502 (the upstream's credentials), not a 401 about the caller
    assert err.value.status_code == 502, err.value
    assert up.requests == []  # nothing reached Vertex without a token
