"""A model name a client sends through a wildcard deployment never steers the upstream URL: the official
openai SDK against the gateway, whose ``gemini/*`` group reaches the fake upstream with the operator's key."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from gateway_harness import MASTER_KEY, UPSTREAM_KEYS, ServedGateway

from llmswitch.testing import FakeUpstream


@pytest.fixture(scope="module")
def wild_gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    db = tmp_path_factory.mktemp("paths") / "keys.db"
    config = f"""\
model_list:
  - model_name: "gemini/*"
    litellm_params:
      model: "gemini/*"
      api_base: "{upstream.gemini_base}"
      api_key: {UPSTREAM_KEYS["gemini"]}
general_settings:
  master_key: {MASTER_KEY}
  store_path: "{db}"
router_settings:
  num_retries: 0
"""
    with ServedGateway(config) as served:
        yield served


def client(gw: ServedGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.mark.parametrize("model", ["gemini/x/../../v1beta/cachedContents?", "gemini/models/..", "gemini/a\\b"])
def test_a_model_name_that_would_climb_the_upstream_path_is_a_400_and_never_sent(
    wild_gw: ServedGateway, up: FakeUpstream, model: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(wild_gw).chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 400
    assert f"the model name {model.removeprefix('gemini/')!r} cannot be part of a URL path" in str(caught.value)
    assert up.requests == []


def test_a_model_name_with_url_characters_stays_inside_its_path_segment(
    wild_gw: ServedGateway, up: FakeUpstream
) -> None:
    r = client(wild_gw).chat.completions.create(model="gemini/gem?ini#x", messages=[{"role": "user", "content": "Hi"}])
    assert r.choices[0].message.content
    [seen] = up.requests
    # the fake upstream decodes the path: '?' and '#' arrived inside it, as encoded characters, not as a query
    assert seen.path == "/v1beta/models/gem?ini#x:generateContent" and seen.query == {}
