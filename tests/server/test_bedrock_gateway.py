"""A Bedrock deployment behind the gateway, configured as LiteLLM users write it (``aws_*`` settings from
the environment in ``litellm_params``): the settings sign the calls and never reach the body; clients of
every dialect get their answers, whole and streamed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import anthropic
import openai
import pytest
from gateway_harness import MASTER_KEY, Closing, ServedGateway

from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream) -> Iterator[ServedGateway]:
    os.environ["LLMSWITCH_TEST_AWS_SECRET"] = "gw-test-secret"
    config = f"""model_list:
  - model_name: on-bedrock
    litellm_params:
      model: bedrock/us.amazon.nova-lite-v1:0
      aws_access_key_id: AKIDGATEWAYTEST00001
      aws_secret_access_key: os.environ/LLMSWITCH_TEST_AWS_SECRET
      aws_region_name: us-west-2
      api_base: "{upstream.url}"
  - model_name: claude-invoke
    litellm_params:
      model: bedrock/invoke/us.anthropic.claude-sonnet-4-5-20250929-v1:0
      aws_access_key_id: AKIDGATEWAYTEST00001
      aws_secret_access_key: os.environ/LLMSWITCH_TEST_AWS_SECRET
      aws_region_name: us-west-2
      api_base: "{upstream.url}"
general_settings:
  master_key: {MASTER_KEY}
router_settings:
  num_retries: 0
"""
    try:
        with ServedGateway(config) as gateway:
            yield gateway
    finally:
        os.environ.pop("LLMSWITCH_TEST_AWS_SECRET", None)


def test_openai_clients_reach_converse_whole_and_streamed(
    gw: ServedGateway, up: FakeUpstream, closing: Closing
) -> None:
    up.script(Reply(text="from nova", usage=(8, 2)), Reply(text="streamed nova"))
    oc = closing(openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0))
    r = oc.chat.completions.create(model="on-bedrock", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "from nova"
    stream = oc.chat.completions.create(model="on-bedrock", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "streamed nova"
    for rec in up.requests:
        assert rec.path.startswith("/model/us.amazon.nova-lite-v1:0/converse")
        assert rec.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDGATEWAYTEST00001/")
        assert "/us-west-2/bedrock/aws4_request" in rec.headers["authorization"]
        assert not any(k.startswith("aws") for k in rec.json)
    assert "gw-test-secret" not in str([r.headers for r in up.requests])


def test_anthropic_clients_reach_invoke_model_whole_and_streamed(
    gw: ServedGateway, up: FakeUpstream, closing: Closing
) -> None:
    up.script(Reply(text="claude on bedrock"), Reply(text="claude streamed"))
    ac = closing(anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0))
    m = ac.messages.create(model="claude-invoke", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert m.content[0].text == "claude on bedrock"  # type: ignore[union-attr]
    with ac.messages.stream(model="claude-invoke", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream) == "claude streamed"
    whole, streamed = up.requests
    assert whole.path.endswith("/invoke") and streamed.path.endswith("/invoke-with-response-stream")
    assert whole.json["anthropic_version"] == "bedrock-2023-05-31" and "model" not in whole.json


def test_a_throttled_deployment_answers_the_client_429(gw: ServedGateway, up: FakeUpstream, closing: Closing) -> None:
    up.script(Reply(status=429, message="Too many requests, please wait", error_type="ThrottlingException"))
    oc = closing(openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0))
    with pytest.raises(openai.RateLimitError):
        oc.chat.completions.create(model="on-bedrock", messages=[{"role": "user", "content": "hi"}])
