"""LiteLLM proxy configs, unchanged, served by the gateway: the documentation samples in
tests/config/litellm_docs/ start and answer /v1/models and /health/readiness; the bench config, pointed at
the fake upstream, serves chat; and the LiteLLM settings a config carries take effect at request time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from gateway_harness import MASTER_KEY, ServedGateway

from llmswitch.config import check_config, load_config, parse_config
from llmswitch.testing import FakeUpstream, Reply

TESTS = Path(__file__).resolve().parents[1]
DOCS = TESTS / "config" / "litellm_docs"
SAMPLES = sorted(DOCS.glob("*.yaml"))
BENCH = TESTS.parents[1] / "shared" / "bench" / "config.yaml"

# fake values for every variable the samples read with os.environ/ (the config tests use the same)
ENV = {
    name: f"value-of-{name.lower()}"
    for name in (
        "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY", "AZURE_API_KEY", "AZURE_API_BASE",
        "AZURE_NORTH_AMERICA_API_KEY", "AZURE_API_KEY_EU", "AZURE_API_KEY_CA", "REDIS_HOST", "REDIS_PASSWORD",
        "HUGGINGFACE_API_KEY",
    )
} | {"REDIS_PORT": "6379"}  # fmt: skip
PROVIDER_KEY_VARIABLES = ("OPENAI_API_KEY", "AZURE_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory: a config with a master key and no store path puts its SQLite file in the
    working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_there_are_samples() -> None:
    assert len(SAMPLES) >= 15


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_a_doc_sample_serves_models_and_readiness(sample: Path, in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(ENV)
    config, problems, _ = check_config(sample, env=env)
    assert problems == [] and config is not None
    # the process sees what the check saw (LiteLLM reads provider keys from the environment, too)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    groups = {d.model_name for d in config.deployments if "*" not in d.model_name}
    aliases = set(config.router.model_group_alias)
    key = config.server.master_key
    with ServedGateway(config) as gw:
        ready = gw.call("GET", "/health/readiness", key=None)
        assert ready.status == 200
        assert ready.json()["status"] == "healthy"
        assert ready.json()["db"] == ("connected" if key else "none")
        models = gw.call("GET", "/v1/models", key=key)
        assert models.status == 200
        listed = {m["id"] for m in models.json()["data"]}
        assert groups <= listed <= groups | aliases
        if key:
            assert gw.call("GET", "/v1/models", key="sk-not-the-master").status == 401


def test_the_bench_config_serves_bench_and_bench_stream(up: FakeUpstream, in_tmp: Path) -> None:
    text, count = re.subn(r"http://127\.0\.0\.1:\d+/v1", up.openai_base, BENCH.read_text())
    assert count == 2
    check = parse_config(text, str(BENCH))
    assert check.problems == [] and check.config is not None
    master = check.config.server.master_key
    assert master is not None and master.startswith("sk-bench-master")
    up.script(Reply(text="whole answer", usage=(5, 2)), Reply(text="streamed answer", chunk_size=3, usage=(5, 2)))
    with ServedGateway(check.config) as gw, openai.OpenAI(base_url=f"{gw.url}/v1", api_key=master, max_retries=0) as oc:
        whole = oc.chat.completions.create(model="bench", messages=[{"role": "user", "content": "hi"}])
        assert whole.choices[0].message.content == "whole answer"
        assert whole.usage is not None and (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (5, 2)
        text = ""
        for chunk in oc.chat.completions.create(
            model="bench-stream", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            text += "".join(c.delta.content or "" for c in chunk.choices)
        assert text == "streamed answer"
    assert [(r.path, r.headers["authorization"], r.json.get("stream", False)) for r in up.requests] == [
        ("/v1/chat/completions", "Bearer sk-upstream", False),
        ("/v1/chat/completions", "Bearer sk-upstream", True),
    ]
    assert master not in "".join(str(r.headers) + r.body.decode() for r in up.requests)


# ---------------------------------------------------------------- LiteLLM settings at request time


def routed_config(up: FakeUpstream, store: Path, router_settings: str, extra_params: str = "") -> str:
    return f"""
model_list:
  - model_name: primary
    litellm_params:
      model: openai/primary-model
      api_base: "{up.openai_base}"
      api_key: sk-up-primary
{extra_params}
  - model_name: backup
    litellm_params: {{model: openai/backup-model, api_base: "{up.openai_base}", api_key: sk-up-backup}}
router_settings:
  num_retries: 0
{router_settings}
general_settings:
  master_key: {MASTER_KEY}
  store_path: "{store}"
"""


@pytest.fixture(scope="module")
def routed_gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    settings = """\
  model_group_alias: {"gpt-4": "primary", "secret-alias": {"model": "backup", "hidden": true}}
  fallbacks: [{"primary": ["backup"]}]"""
    params = """\
      temperature: 0.2
      organization: org-ikDc4ex8NB
      extra_headers: {"AI-Resource-Group": "ishaan-resource"}"""
    store = tmp_path_factory.mktemp("routed") / "keys.db"
    with ServedGateway(routed_config(upstream, store, settings, params)) as served:
        yield served


def chat(gw: ServedGateway, model: str) -> openai.types.chat.ChatCompletion:
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as oc:
        return oc.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def test_deployment_params_reach_the_request_body(routed_gw: ServedGateway, up: FakeUpstream) -> None:
    chat(routed_gw, "primary")
    (rec,) = up.requests
    assert rec.json["temperature"] == 0.2
    assert rec.json["model"] == "primary-model"


def test_extra_headers_and_organization_are_headers_not_body_fields(routed_gw: ServedGateway, up: FakeUpstream) -> None:
    chat(routed_gw, "primary")
    (rec,) = up.requests
    assert rec.headers.get("ai-resource-group") == "ishaan-resource"
    assert rec.headers.get("openai-organization") == "org-ikDc4ex8NB"
    assert "extra_headers" not in rec.json and "organization" not in rec.json


def test_model_group_alias_routes_to_its_group(routed_gw: ServedGateway, up: FakeUpstream) -> None:
    assert chat(routed_gw, "gpt-4").choices[0].message.content == "hi"
    assert chat(routed_gw, "secret-alias").choices[0].message.content == "hi"
    assert [r.json["model"] for r in up.requests] == ["primary-model", "backup-model"]
    listed = {m["id"] for m in routed_gw.call("GET", "/v1/models").json()["data"]}
    assert "gpt-4" in listed and "secret-alias" not in listed  # hidden aliases route but are not listed


def test_fallbacks_serve_a_failing_group(routed_gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(status=500), model="primary-model")
    up.script(Reply(text="from the backup"), model="backup-model")
    assert chat(routed_gw, "primary").choices[0].message.content == "from the backup"
    assert [r.json["model"] for r in up.requests] == ["primary-model", "backup-model"]


@pytest.mark.parametrize("sample", ["caching_redis.yaml", "configs_model_specific_params.yaml"])
def test_a_clean_sample_serves_without_provider_keys_in_the_environment(
    sample: str, in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiteLLM reads a missing api_key from the environment at call time: `config check` passes such a file
    (and an Azure deployment authenticated by azure_ad_token), so the gateway must start on it too."""
    for name in PROVIDER_KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = load_config(DOCS / sample, env={})
    with ServedGateway(config) as gw:
        assert gw.call("GET", "/health/readiness", key=None).status == 200
        listed = {m["id"] for m in gw.call("GET", "/v1/models", key=None).json()["data"]}
        assert listed == {d.model_name for d in config.deployments}
