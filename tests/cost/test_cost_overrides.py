"""Per-deployment prices under LiteLLM's model_info / litellm_params names, laid over the table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from llmswitch import ir
from llmswitch.config.model import Deployment
from llmswitch.cost import cost_for_response, cost_of, per_million, price_for
from llmswitch.errors import ConfigError

USAGE = ir.Usage(input_tokens=1_000, output_tokens=1_000)


def test_an_override_replaces_one_rate_and_keeps_the_rest() -> None:
    price = price_for("gpt-4o", overrides={"input_cost_per_token": 2e-06})
    assert price is not None
    assert price.input == Decimal("0.000002")
    assert price.output == per_million(10)
    assert price.cache_read == per_million("1.25")
    assert price.max_output_tokens == 16384


def test_floats_are_read_as_written() -> None:
    # 2.5e-06 as a binary float is 2.49999...e-06; the rate must be the decimal the user wrote
    price = price_for("custom", overrides={"input_cost_per_token": 2.5e-06, "output_cost_per_token": "1e-05"})
    assert price is not None
    assert (price.input, price.output) == (Decimal("0.0000025"), Decimal("0.00001"))


def test_an_unknown_model_is_priced_from_its_overrides() -> None:
    # 1,000 x 1e-7 + 1,000 x 2e-7 = 0.0001 + 0.0002 = $0.0003
    overrides = {"input_cost_per_token": 1e-07, "output_cost_per_token": 2e-07}
    assert cost_for_response("ollama/llama3.1", "ollama", USAGE, overrides) == 0.0003


def test_half_a_price_is_no_price() -> None:
    assert price_for("custom", overrides={"input_cost_per_token": 1e-07}) is None
    assert price_for("custom", overrides={"max_tokens": 4096}) is None


def test_an_embedding_model_needs_only_its_input_rate() -> None:
    price = price_for("my-embedder", overrides={"input_cost_per_token": 1e-08, "mode": "embedding"})
    assert price is not None and price.mode == "embedding"
    assert (
        cost_for_response(
            "my-embedder", None, ir.Usage(input_tokens=1_000), {"input_cost_per_token": 1e-08, "mode": "embedding"}
        )
        == 1e-05
    )


def test_another_providers_deployment_is_priced_only_by_its_overrides() -> None:
    # Azure's gpt-4o is not OpenAI's list price: unpriced until the deployment says what it pays
    assert cost_for_response("gpt-4o-2024-08-06", "azure", USAGE) is None
    overrides = {"input_cost_per_token": 2.75e-06, "output_cost_per_token": 1.1e-05}
    # 1,000 x 2.75e-6 + 1,000 x 1.1e-5 = 0.00275 + 0.011 = $0.01375
    assert cost_for_response("gpt-4o-2024-08-06", "azure", USAGE, overrides) == 0.01375


def test_cache_and_reasoning_keys() -> None:
    overrides = {
        "input_cost_per_token": "0.000003",
        "output_cost_per_token": "0.000015",
        "cache_read_input_token_cost": "0.0000003",
        "cache_creation_input_token_cost": "0.00000375",
        "cache_creation_input_token_cost_above_1hr": "0.000006",
        "output_cost_per_reasoning_token": "0.00002",
    }
    price = price_for("custom-claude", overrides=overrides)
    assert price is not None
    # 1,000 uncached x 3 = 0.003 ; 1,000 read x 0.30 = 0.0003 ; 1,000 5m x 3.75 = 0.00375 ;
    # 1,000 1h x 6 = 0.006 ; 1,000 output x 15 = 0.015 ; 1,000 reasoning x 20 = 0.02       -> $0.04805
    usage = ir.Usage(
        input_tokens=4_000,
        cache_read_tokens=1_000,
        cache_write_tokens=2_000,
        cache_write_5m_tokens=1_000,
        cache_write_1h_tokens=1_000,
        output_tokens=2_000,
        reasoning_tokens=1_000,
    )
    assert cost_of(usage, price) == 0.04805


def test_long_context_tier_keys() -> None:
    overrides = {
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06,
        "input_cost_per_token_above_200k_tokens": 3e-06,
        "output_cost_per_token_above_200k_tokens": 4e-06,
    }
    price = price_for("custom", overrides=overrides)
    assert price is not None
    # 300,000 x 3e-6 = 0.9 ; 1,000 x 4e-6 = 0.004                                     -> $0.904
    assert cost_of(ir.Usage(input_tokens=300_000, output_tokens=1_000), price) == 0.904
    # 100,000 x 1e-6 = 0.1 ; 1,000 x 2e-6 = 0.002                                     -> $0.102
    assert cost_of(ir.Usage(input_tokens=100_000, output_tokens=1_000), price) == 0.102


def test_a_tier_override_keeps_the_tables_other_tier_rates() -> None:
    price = price_for("gemini-2.5-pro", overrides={"output_cost_per_token_above_200k_tokens": 2e-05})
    assert price is not None
    (tier,) = price.tiers
    assert (tier.input, tier.output) == (per_million("2.50"), Decimal("0.00002"))


def test_batch_rate_keys() -> None:
    overrides = {
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 4e-06,
        "input_cost_per_token_batches": 4e-07,
        "output_cost_per_token_batches": 2e-06,
    }
    price = price_for("custom", overrides=overrides)
    assert price is not None
    # 1,000 x 4e-7 + 1,000 x 2e-6 = 0.0004 + 0.002                                     -> $0.0024
    assert cost_of(USAGE, price, batch=True) == 0.0024


def test_limits() -> None:
    price = price_for("gpt-4o", overrides={"max_tokens": 4096, "max_input_tokens": 64000})
    assert price is not None
    assert (price.max_output_tokens, price.max_input_tokens) == (4096, 64000)
    price = price_for("gpt-4o", overrides={"max_tokens": 4096, "max_output_tokens": 8000})
    assert price is not None and price.max_output_tokens == 8000


def test_unrelated_keys_are_ignored() -> None:
    assert price_for("gpt-4o", overrides={"id": "abc", "rpm": 10, "temperature": 0.2}) == price_for("gpt-4o")


@pytest.mark.parametrize(
    "overrides",
    [
        {"input_cost_per_token": "cheap"},
        {"input_cost_per_token": -1e-06},
        {"input_cost_per_token": True},
        {"input_cost_per_token": float("nan")},
        {"max_tokens": "many"},
        {"max_tokens": 0},
    ],
)
def test_bad_values_are_config_errors(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        price_for("gpt-4o", overrides=overrides)


def test_a_deployments_model_info_and_params_price_it() -> None:
    deployment = Deployment(
        id="d1",
        model_name="house-llama",
        provider="hosted_vllm",
        model="meta-llama/Llama-3.1-8B-Instruct",
        model_info={"input_cost_per_token": 5e-08, "max_tokens": 8192},
        params={"output_cost_per_token": 1e-07},
    )
    price = price_for(deployment.model, deployment.provider, {**deployment.params, **deployment.model_info})
    assert price is not None
    assert (price.input, price.output, price.max_output_tokens) == (Decimal("5E-8"), Decimal("1E-7"), 8192)
