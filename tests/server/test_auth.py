"""Who may call the gateway: keys in every header form each SDK uses, refusals in each client's own format,
admin routes for the master key only, blocked / expired / deleted keys, and keys shared by two instances.

In every case the upstream sees the deployment's key, never the caller's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from gateway_harness import (
    FACES,
    GROUPS,
    MASTER_KEY,
    UPSTREAM_KEYS,
    ServedGateway,
    chat_request,
    dialect_error,
    gateway_config,
    sent_upstream,
)
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from llmswitch.testing import FakeUpstream

UNAUTHENTICATED = {"openai": "authentication_error", "anthropic": "authentication_error", "gemini": "UNAUTHENTICATED"}
DENIED = {"openai": "permission_error", "anthropic": "permission_error", "gemini": "PERMISSION_DENIED"}


def sdk_chat(face: str, gw: ServedGateway, key: str, group: str) -> str:
    """One chat request through the official SDK of ``face``; the answer's text."""
    if face == "openai":
        with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0) as oc:
            r = oc.chat.completions.create(model=group, messages=[{"role": "user", "content": "ping"}])
            return r.choices[0].message.content or ""
    if face == "anthropic":
        with anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0) as ac:
            m = ac.messages.create(model=group, max_tokens=16, messages=[{"role": "user", "content": "ping"}])
            return "".join(b.text for b in m.content if b.type == "text")
    options = gtypes.HttpOptions(base_url=gw.url, api_version="v1beta")
    with genai.Client(api_key=key, http_options=options) as gc:
        return gc.models.generate_content(model=group, contents="ping").text or ""


def sdk_error(face: str) -> tuple[type[Exception], type[Exception]]:
    """The exceptions the SDK of ``face`` raises for a 401 and for a 403."""
    if face == "openai":
        return openai.AuthenticationError, openai.PermissionDeniedError
    if face == "anthropic":
        return anthropic.AuthenticationError, anthropic.PermissionDeniedError
    return genai_errors.ClientError, genai_errors.ClientError


def assert_no_client_keys(up: FakeUpstream, *keys: str) -> None:
    seen = sent_upstream(up)
    for key in (*keys, MASTER_KEY):
        assert key not in seen


@pytest.mark.parametrize("face", FACES)
def test_no_key_is_401_in_the_clients_format(gw: ServedGateway, up: FakeUpstream, face: str) -> None:
    path, body = chat_request(face, GROUPS["openai"])
    r = gw.call("POST", path, body, key=None)
    assert r.status == 401
    kind, message = dialect_error(face, r)
    assert kind == UNAUTHENTICATED[face]
    assert "no API key" in message
    assert up.requests == []


@pytest.mark.parametrize("face", FACES)
def test_wrong_key_is_401_through_the_sdk(gw: ServedGateway, up: FakeUpstream, face: str) -> None:
    unauthenticated, _ = sdk_error(face)
    with pytest.raises(unauthenticated) as caught:
        sdk_chat(face, gw, "sk-not-a-key-of-this-gateway", GROUPS["openai"])
    if face == "gemini":
        assert isinstance(caught.value, genai_errors.ClientError)
        assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")
    assert up.requests == []


@pytest.mark.parametrize("face", FACES)
def test_key_without_the_group_is_403_and_works_on_its_own(gw: ServedGateway, up: FakeUpstream, face: str) -> None:
    key = gw.new_key(models=[GROUPS["anthropic"]])
    _, denied = sdk_error(face)
    with pytest.raises(denied) as caught:
        sdk_chat(face, gw, key, GROUPS["openai"])
    assert "m-openai" in str(caught.value)
    if face == "gemini":
        assert isinstance(caught.value, genai_errors.ClientError)
        assert (caught.value.code, caught.value.status) == (403, "PERMISSION_DENIED")
    assert up.requests == []

    assert sdk_chat(face, gw, key, GROUPS["anthropic"]) == "ping"
    (rec,) = up.requests
    assert rec.headers["x-api-key"] == UPSTREAM_KEYS["anthropic"]
    assert_no_client_keys(up, key)


@pytest.mark.parametrize("face", FACES)
def test_denied_model_error_is_in_the_clients_format(gw: ServedGateway, up: FakeUpstream, face: str) -> None:
    key = gw.new_key(models=[GROUPS["gemini"]])
    path, body = chat_request(face, GROUPS["openai"])
    r = gw.call("POST", path, body, key=key)
    assert r.status == 403
    kind, message = dialect_error(face, r)
    assert kind == DENIED[face]
    assert "'m-openai'" in message
    assert up.requests == []


def _bearer(key: str) -> tuple[str, dict[str, str]]:
    return "", {"authorization": f"Bearer {key}"}


HEADER_FORMS: dict[str, Callable[[str], tuple[str, dict[str, str]]]] = {
    "authorization-bearer": _bearer,
    "bearer-lowercase-scheme": lambda key: ("", {"authorization": f"bearer {key}"}),
    "x-api-key": lambda key: ("", {"x-api-key": key}),
    "x-goog-api-key": lambda key: ("", {"x-goog-api-key": key}),
    "api-key": lambda key: ("", {"api-key": key}),
    "query-key": lambda key: (f"?key={key}", {}),
}


@pytest.mark.parametrize("form", list(HEADER_FORMS))
@pytest.mark.parametrize("face", FACES)
def test_each_key_form_is_accepted(gw: ServedGateway, up: FakeUpstream, face: str, form: str) -> None:
    key = gw.new_key(models=[GROUPS["openai"]])
    path, body = chat_request(face, GROUPS["openai"], "key form")
    query, headers = HEADER_FORMS[form](key)
    r = gw.call("POST", path + query, body, key=None, headers=headers)
    assert r.status == 200, r.body
    # the same form with a key the gateway does not know is refused: the form is really read
    query, headers = HEADER_FORMS[form]("sk-unknown-" + key[3:])
    refused = gw.call("POST", path + query, body, key=None, headers=headers)
    assert refused.status == 401
    assert dialect_error(face, refused)[1] == "invalid API key"

    (rec,) = up.requests
    assert rec.headers["authorization"] == f"Bearer {UPSTREAM_KEYS['openai']}"
    assert rec.query == {}
    assert_no_client_keys(up, key)


def test_a_non_bearer_authorization_is_no_key(gw: ServedGateway, up: FakeUpstream) -> None:
    path, body = chat_request("openai", GROUPS["openai"])
    r = gw.call("POST", path, body, key=None, headers={"authorization": f"Basic {MASTER_KEY}"})
    assert r.status == 401
    assert "no API key" in dialect_error("openai", r)[1]
    assert up.requests == []


MASTER_ONLY: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/key/generate", {"models": ["m-openai"]}),
    ("POST", "/key/update", {"key": "__self__", "models": []}),
    ("POST", "/key/delete", {"keys": ["__self__"]}),
    ("GET", "/key/list", None),
]


@pytest.mark.parametrize(("method", "path", "body"), MASTER_ONLY, ids=[p for _, p, _ in MASTER_ONLY])
def test_admin_routes_refuse_a_virtual_key(
    gw: ServedGateway, method: str, path: str, body: dict[str, Any] | None
) -> None:
    key = gw.new_key(models=["m-openai"], key_alias="not-an-admin")
    if body is not None:
        body = {k: ([key] if v == ["__self__"] else key if v == "__self__" else v) for k, v in body.items()}
    r = gw.call(method, path, body, key=key)
    assert r.status == 403
    kind, message = dialect_error("openai", r)
    assert kind == "permission_error" and message.startswith("this route needs the master key"), message
    # nothing changed: the key is still there, with its models
    info = gw.call("GET", f"/key/info?key={key}")
    assert info.status == 200
    assert info.json()["info"]["models"] == ["m-openai"]
    listed = gw.call("GET", "/key/list?size=1000").json()["keys"]
    assert sum(1 for token in listed if token == info.json()["key"]) == 1


def test_admin_routes_refuse_no_key_and_a_wrong_key(gw: ServedGateway) -> None:
    for key in (None, "sk-wrong-master"):
        r = gw.call("GET", "/key/list", key=key)
        assert r.status == 401
        assert dialect_error("openai", r)[0] == "authentication_error"


def test_a_virtual_key_reads_its_own_info_only(gw: ServedGateway) -> None:
    mine = gw.new_key(key_alias="mine")
    theirs = gw.new_key(key_alias="theirs")
    own = gw.call("GET", "/key/info", key=mine)
    assert own.status == 200
    assert own.json()["info"]["key_alias"] == "mine"
    assert gw.call("GET", f"/key/info?key={mine}", key=mine).json()["info"]["key_alias"] == "mine"
    other = gw.call("GET", f"/key/info?key={theirs}", key=mine)
    assert other.status == 403
    assert dialect_error("openai", other)[0] == "permission_error"
    assert theirs not in other.body.decode()


def test_blocked_key_is_refused_until_unblocked(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key()
    path, body = chat_request("openai", GROUPS["openai"])
    assert gw.call("POST", path, body, key=key).status == 200
    assert gw.call("POST", "/key/update", {"key": key, "blocked": True}).status == 200
    r = gw.call("POST", path, body, key=key)
    assert r.status == 401
    assert dialect_error("openai", r) == ("authentication_error", "this API key is blocked")
    assert gw.call("POST", "/key/update", {"key": key, "blocked": False}).status == 200
    assert gw.call("POST", path, body, key=key).status == 200
    assert len(up.requests) == 2


def test_a_key_generated_blocked_is_refused(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(blocked=True)
    path, body = chat_request("anthropic", GROUPS["anthropic"])
    r = gw.call("POST", path, body, key=key)
    assert r.status == 401
    assert dialect_error("anthropic", r) == ("authentication_error", "this API key is blocked")
    assert up.requests == []


@pytest.mark.parametrize("face", FACES)
def test_expired_key_is_refused(gw: ServedGateway, up: FakeUpstream, face: str) -> None:
    key = gw.new_key(duration="0s")  # expires the moment it is made
    path, body = chat_request(face, GROUPS["gemini"])
    r = gw.call("POST", path, body, key=key)
    assert r.status == 401
    assert dialect_error(face, r) == (UNAUTHENTICATED[face], "this API key has expired")
    assert up.requests == []


def test_a_working_key_stops_when_its_duration_is_cut_to_zero(gw: ServedGateway) -> None:
    key = gw.new_key(duration="30d")
    path, body = chat_request("openai", GROUPS["openai"])
    assert gw.call("POST", path, body, key=key).status == 200
    assert gw.call("POST", "/key/update", {"key": key, "duration": "0s"}).status == 200
    r = gw.call("POST", path, body, key=key)
    assert r.status == 401
    assert dialect_error("openai", r)[1] == "this API key has expired"


def test_a_new_key_works_at_once_and_a_deleted_one_stops_at_once(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(models=[GROUPS["gemini"]])
    assert sdk_chat("gemini", gw, key, GROUPS["gemini"]) == "ping"
    r = gw.call("POST", "/key/delete", {"keys": [key]})
    assert r.status == 200
    unauthenticated, _ = sdk_error("gemini")
    with pytest.raises(unauthenticated):
        sdk_chat("gemini", gw, key, GROUPS["gemini"])
    assert len(up.requests) == 1
    assert up.requests[0].headers["x-goog-api-key"] == UPSTREAM_KEYS["gemini"]
    assert_no_client_keys(up, key)


def test_models_list_shows_only_the_keys_groups(gw: ServedGateway) -> None:
    key = gw.new_key(models=[GROUPS["anthropic"], GROUPS["gemini"]])
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0) as oc:
        assert sorted(m.id for m in oc.models.list()) == ["m-anthropic", "m-gemini"]
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as oc:
        assert sorted(m.id for m in oc.models.list()) == ["m-anthropic", "m-gemini", "m-openai"]


@pytest.fixture(scope="module")
def twin(
    gw: ServedGateway, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedGateway]:
    """A second gateway instance sharing the module gateway's SQLite store."""
    store = gw.config.server.store_path
    assert store is not None
    with ServedGateway(gateway_config(upstream, store, num_retries=0)) as served:
        yield served


def _answer_within(gw: ServedGateway, key: str, status: int, message: str | None, seconds: float) -> tuple[int, str]:
    """Poll a chat request with ``key`` until it answers ``status`` (with that error message, if given) or
    ``seconds`` pass; the last (status, error message)."""
    path, body = chat_request("openai", GROUPS["openai"])
    deadline = time.monotonic() + seconds
    while True:
        r = gw.call("POST", path, body, key=key)
        got = (r.status, dialect_error("openai", r)[1] if r.status >= 400 else "")
        if (got[0] == status and message in (None, got[1])) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_keys_made_and_deleted_on_another_instance_take_effect_after_a_refresh(
    gw: ServedGateway, twin: ServedGateway, up: FakeUpstream
) -> None:
    key = gw.new_key(key_alias="made-on-one")
    # the key refresher runs every second: allow a few
    assert _answer_within(twin, key, 200, None, 5) == (200, "")
    assert gw.call("POST", "/key/update", {"key": key, "blocked": True}).status == 200
    assert _answer_within(twin, key, 401, "this API key is blocked", 5) == (401, "this API key is blocked")
    assert gw.call("POST", "/key/delete", {"key_aliases": ["made-on-one"]}).status == 200
    assert _answer_within(twin, key, 401, "invalid API key", 5) == (401, "invalid API key")
    assert_no_client_keys(up, key)
