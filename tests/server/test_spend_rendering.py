"""Money in the admin and spend API is exact: costs whose float sum carries noise (0.000347 * 3 adds up to
0.0010409999999999998) are answered as 0.001041 by /spend/logs, /spend/daily, /key/info, /key/list,
/user/info and /team/info, on SQLite and on PostgreSQL, and in the ``x-llmswitch-cost`` header."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from gateway_harness import MASTER_KEY, ServedGateway, chat_request, model_list
from hypothesis import given
from hypothesis import strategies as st
from multi_harness import wait_logged

from llmswitch.store import SpendRecord, open_store
from llmswitch.testing import FakeUpstream, Reply

NOISY = 0.000347  # three of them add up to 0.0010409999999999998 in binary floats
DAY = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
# a price per token whose cost for 1000 tokens is 7.000000000000001e-05 as a float product
PRICE_PER_TOKEN = 7e-8


def config(up: FakeUpstream, store: str) -> str:
    where = "database_url" if store.startswith("postgresql://") else "store_path"
    priced = f"""  - model_name: m-priced
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "{up.openai_base}"
      api_key: sk-up-priced-1
      input_cost_per_token: {PRICE_PER_TOKEN}
      output_cost_per_token: 0
"""
    return (
        model_list(up)
        + priced
        + f"general_settings:\n  master_key: {MASTER_KEY}\n  {where}: {json.dumps(store)}\n"
        + "router_settings:\n  num_retries: 0\n"
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return str(tmp_path_factory.mktemp("rendering") / "keys.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="module")
def served(upstream: FakeUpstream, store_url: str) -> Iterator[ServedGateway]:
    with ServedGateway(config(upstream, store_url)) as gw:
        yield gw


def insert(store_url: str, records: list[SpendRecord]) -> None:
    url = store_url if store_url.startswith("postgresql://") else f"sqlite:///{store_url}"

    async def main() -> None:
        async with open_store(url) as store:
            assert await store.insert_spend_logs(records) == len(records)

    asyncio.run(main())


def exact(gw: ServedGateway, path: str) -> Any:
    """The JSON answer with every number read as a Decimal: float noise in the text shows up as digits."""
    r = gw.call("GET", path)
    assert r.status == 200, r.body
    return json.loads(r.body, parse_float=Decimal)


def test_sums_and_logs_are_exact_in_every_answer(served: ServedGateway, store_url: str) -> None:
    assert NOISY + NOISY + NOISY != 0.001041 and 0.1 + 0.2 != 0.3  # the noise this test is about
    tag = uuid.uuid4().hex[:8]
    user, team = f"u-{tag}", f"t-{tag}"
    assert served.call("POST", "/team/new", {"team_id": team}).status == 200
    assert served.call("POST", "/user/new", {"user_id": user}).status == 200
    r = served.call("POST", "/key/generate", {"user_id": user, "team_id": team, "key_alias": f"a-{tag}"})
    assert r.status == 200, r.body
    key = r.json()["key"]
    token = exact(served, f"/key/info?key={key}")["key"]
    other = served.new_key(key_alias=f"b-{tag}")
    other_token = exact(served, f"/key/info?key={other}")["key"]
    records = [
        SpendRecord(request_id=f"{tag}-{i}", time=DAY, key_hash=token, user_id=user, team_id=team, cost=NOISY)
        for i in range(3)
    ]
    records.append(SpendRecord(request_id=f"{tag}-x", time=DAY, key_hash=other_token, cost=0.1 + 0.2))
    insert(store_url, records)

    logs = exact(served, f"/spend/logs?api_key={key}")
    assert [row["spend"] for row in logs] == [Decimal("0.000347")] * 3
    assert [row["spend"] for row in exact(served, f"/spend/logs?api_key={other}")] == [Decimal("0.3")]

    daily = exact(served, "/spend/daily?group_by=key&start_date=2025-03-04&end_date=2025-03-04")["days"]
    by_key = {row["key"]: row["spend"] for row in daily}
    assert by_key[token] == Decimal("0.001041") == sum(row["spend"] for row in logs)
    assert by_key[other_token] == Decimal("0.3")
    by_team = exact(served, "/spend/daily?group_by=team&start_date=2025-03-04&end_date=2025-03-04")["days"]
    assert {row["team"]: row["spend"] for row in by_team}[team] == Decimal("0.001041")

    assert exact(served, f"/key/info?key={key}")["info"]["spend"] == Decimal("0.001041")
    user_info = exact(served, f"/user/info?user_id={user}")
    assert user_info["user_info"]["spend"] == Decimal("0.001041")
    assert Decimal("0.001041") in [k["spend"] for k in user_info["keys"]]  # (/user/new made a key too)
    assert exact(served, f"/team/info?team_id={team}")["team_info"]["spend"] == Decimal("0.001041")
    listed = exact(served, f"/key/list?team_id={team}&return_full_object=true")["keys"]
    assert [k["spend"] for k in listed] == [Decimal("0.001041")]
    teams = exact(served, "/team/list")
    assert [t["spend"] for t in teams if t["team_id"] == team] == [Decimal("0.001041")]


def test_the_cost_header_and_the_logged_cost_are_exact(served: ServedGateway, up: FakeUpstream) -> None:
    assert 1000 * PRICE_PER_TOKEN != 0.00007  # the float product carries noise
    key = served.new_key(key_alias=f"h-{uuid.uuid4().hex[:8]}")
    up.script(Reply(usage=(1000, 0)))
    path, body = chat_request("openai", "m-priced")
    r = served.call("POST", path, body, key=key)
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-cost"] == "0.00007"
    wait_logged(served.port, key, 1)  # shipping to the store is batched
    assert [row["spend"] for row in exact(served, f"/spend/logs?api_key={key}")] == [Decimal("0.00007")]


def test_cost_text_and_render_cost() -> None:
    from llmswitch.server.amounts import cost_text, render_cost

    assert render_cost(NOISY + NOISY + NOISY) == 0.001041 and repr(render_cost(0.1 + 0.2)) == "0.3"
    assert render_cost(None) is None and render_cost(Decimal("1.23456789012345")) == 1.2345678901
    assert cost_text(1e-11) == "0" and cost_text(2.5e-7) == "0.00000025" and cost_text(1234.5) == "1234.5"


@given(st.floats(min_value=0, max_value=1e5, allow_nan=False, allow_infinity=False))
def test_a_rendered_cost_prints_with_at_most_ten_decimal_places(value: float) -> None:
    from llmswitch.server.amounts import render_cost

    rendered = render_cost(value)
    assert rendered is not None
    assert Decimal(repr(rendered)).as_tuple().exponent >= -10  # type: ignore[operator]
    assert abs(Decimal(repr(rendered)) - Decimal(value)) <= Decimal(
        "6e-11"
    )  # half the last place, plus the float's own rounding
