"""The dashboard in a real headless Chromium, against a real gateway on loopback with the fake upstream behind it.

One walk through, as an operator does it: sign in with the master key, create a key, use it with the
openai SDK, see its spend and a chart, block it, see its requests refused; then sign in as a team
admin and see only that team. Each page is saved as a screenshot (``build/ui-screenshots`` or
``$LLMSWITCH_UI_SCREENSHOTS``); docs/img/ui holds copies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from browser import chromium, console_errors, named, page_text, screenshot, wait_for
from gateway_harness import GROUPS, MASTER_KEY, ServedGateway, gateway_config
from selenium.webdriver.common.by import By

from llmswitch.testing import FakeUpstream

ALIAS = "ci-reporting-bot"


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    store = str(tmp_path_factory.mktemp("browser") / "store.db")
    with ServedGateway(gateway_config(upstream, store, num_retries=0)) as served:
        for user in ("ana", "bob"):
            assert served.call("POST", "/user/new", {"user_id": user, "auto_create_key": False}).status == 200
        members = [{"user_id": "ana", "role": "admin"}, {"user_id": "bob"}]
        team = {"team_id": "research", "team_alias": "Research", "max_budget": 50, "members_with_roles": members}
        assert served.call("POST", "/team/new", team).status == 200
        notebook = served.new_key(team_id="research", user_id="bob", key_alias="research-notebook", max_budget=1e-7)
        _chat(served, notebook)  # spends past its (tiny) budget: listed as near its budget on Spend
        yield served


def _chat(gw: ServedGateway, key: str) -> Any:
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    try:
        return client.chat.completions.create(model=GROUPS["openai"], messages=[{"role": "user", "content": "hi"}])
    finally:
        client.close()


def _sign_in(driver: Any, gw: ServedGateway, key: str) -> None:
    driver.get(f"{gw.url}/ui")
    driver.delete_all_cookies()  # never carry a session over from another test
    driver.refresh()
    field = wait_for(
        driver,
        lambda d: next((el for el in d.find_elements(By.CSS_SELECTOR, "input") if el.is_displayed()), False),
        "the sign-in field",
    )
    name = field.accessible_name.lower()
    assert "key" in name or "password" in name, name
    field.send_keys(key)
    named(driver, "button", "Sign in").click()


def _open(driver: Any, link: str, heading: str) -> None:
    named(driver, "a", link).click()
    wait_for(driver, lambda d: any(h.text == heading for h in d.find_elements(By.TAG_NAME, "h1")), heading)


def test_operator_walkthrough(driver: Any, gw: ServedGateway) -> None:
    driver.get(f"{gw.url}/ui")
    wait_for(driver, lambda d: d.find_element(By.ID, "sign-in").is_displayed(), "the sign-in form")
    screenshot(driver, "sign-in")
    _sign_in(driver, gw, MASTER_KEY)
    _open(driver, "Keys", "Keys")
    # no key anywhere the page's script could read it back
    assert driver.execute_script("return window.localStorage.length + window.sessionStorage.length") == 0
    assert MASTER_KEY not in driver.execute_script("return document.cookie")

    named(driver, "button", "Create key").click()
    form = wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, "form[aria-label='Create key']"), "the form")
    required = form.find_elements(By.CSS_SELECTOR, "input[required], select[required], textarea[required]")
    assert required, "the key form marks its required fields"
    assert all(el.accessible_name for el in required), [el.get_attribute("outerHTML") for el in required]
    named(driver, "input", "Key alias", within=form).send_keys(ALIAS)
    named(driver, "input", "Max budget (USD)", within=form).send_keys("25")
    named(driver, "button", "Create", within=form).click()
    shown = wait_for(driver, lambda d: d.find_elements(By.ID, "new-key"), "the new key")[0]
    key = shown.text
    assert key.startswith("sk-"), key
    screenshot(driver, "keys-new-key")

    answer = _chat(gw, key)
    assert answer.choices[0].message.content

    # the key is shown once: after leaving the page it is nowhere on it
    _open(driver, "Users", "Users")
    wait_for(driver, lambda d: "ana" in page_text(d), "the users")
    screenshot(driver, "users")
    _open(driver, "Keys", "Keys")
    wait_for(driver, lambda d: ALIAS in page_text(d), "the new key's row")
    assert key not in driver.page_source
    screenshot(driver, "keys")
    named(driver, "input", "Search keys").send_keys("reporting")  # searches every key on the gateway
    wait_for(driver, lambda d: "research-notebook" not in page_text(d) and ALIAS in page_text(d), "the search")

    _open(driver, "Spend", "Spend and usage")

    def spend_seen(d: Any) -> bool:
        if d.find_element(By.ID, "total-requests").text not in ("", "0") and ALIAS in page_text(d):
            return True
        named(d, "button", "Refresh").click()  # the record reaches the store a moment after the answer
        return False

    wait_for(driver, spend_seen, "the key's spend on the spend page")
    charts = driver.find_elements(By.CSS_SELECTOR, "figure canvas")
    assert len(charts) >= 4, "a chart per measure"
    figures = driver.find_elements(By.CSS_SELECTOR, "figure[role='img']")
    assert any("Cost (USD) per day" in (f.accessible_name or "") for f in figures)
    driver.set_window_size(1366, 1500)  # the whole page: charts, top spenders, budgets
    screenshot(driver, "spend")
    driver.set_window_size(1366, 900)

    _open(driver, "Logs", "Request logs")
    wait_for(driver, lambda d: ALIAS in page_text(d), "the request in the logs")
    screenshot(driver, "logs")
    _open(driver, "Teams", "Teams")
    wait_for(driver, lambda d: "Research" in page_text(d), "the team")
    named(driver, "button", "Edit Research").click()
    members = named(driver, "input", "Members (user or user:admin, comma-separated)")
    assert members.get_attribute("value") == "ana:admin, bob"
    members.send_keys(", carl:admin")
    named(driver, "button", "Save team").click()
    wait_for(driver, lambda d: "carl (admin)" in page_text(d), "the new team admin")
    team = gw.call("GET", "/team/info?team_id=research").json()["team_info"]
    assert {"user_id": "carl", "role": "admin"} in team["members_with_roles"] and team["max_budget"] == 50
    screenshot(driver, "teams")
    _open(driver, "Health", "Health")
    wait_for(driver, lambda d: GROUPS["openai"] in page_text(d), "the deployments")
    screenshot(driver, "health")

    _open(driver, "Keys", "Keys")
    named(driver, "button", f"Block {ALIAS}").click()
    named(driver, "button", f"Unblock {ALIAS}")
    with pytest.raises(openai.AuthenticationError, match="blocked"):
        _chat(gw, key)

    named(driver, "button", "Sign out").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "sign-in").is_displayed(), "the sign-in form again")
    assert gw.call("GET", "/key/list", key=None, headers={"cookie": "llmswitch_ui=stale"}).status == 401
    # the whole walk ran under the strict CSP without a violation (nor any other script error)
    errors = [e for e in console_errors(driver) if "/ui/session" not in e]  # the 401 of "who is signed in?"
    assert errors == [], errors


def test_a_team_admin_sees_only_its_team(driver: Any, gw: ServedGateway) -> None:
    admin_key = gw.new_key(team_id="research", user_id="ana", key_alias="ana-admin")
    gw.new_key(key_alias="someone-elses-key")
    _sign_in(driver, gw, admin_key)
    _open(driver, "Keys", "Keys")
    wait_for(driver, lambda d: "research-notebook" in page_text(d), "the team's keys")
    assert "someone-elses-key" not in page_text(driver)
    assert "Team admin of research" in page_text(driver)
    screenshot(driver, "keys-team-admin")
    named(driver, "button", "Sign out").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "sign-in").is_displayed(), "the sign-in form again")


def test_a_plain_key_cannot_sign_in(driver: Any, gw: ServedGateway) -> None:
    _sign_in(driver, gw, gw.new_key(key_alias="plain"))
    wait_for(driver, lambda d: "Sign-in failed" in page_text(d), "the refusal")
    assert "master key or a team admin's key" in page_text(driver)
