"""Personal data and secrets detectors: checksums, formats, and the near misses they must leave alone."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmswitch.guardrails.pii import detect, iban_ok, luhn_ok
from llmswitch.guardrails.secrets import Secrets, detect_secrets_in, plugins_available


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in detect(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 ok", [("CREDIT_CARD", "4111 1111 1111 1111")]),
        ("card 4111 1111 1111 1112 ok", []),  # Luhn fails: not a card (nor anything else)
        ("amex 3782-822463-10005", [("CREDIT_CARD", "3782-822463-10005")]),
        ("GB82 WEST 1234 5698 7654 32", [("IBAN_CODE", "GB82 WEST 1234 5698 7654 32")]),
        ("DE89370400440532013001", []),
        ("ssn 078-05-1120", [("US_SSN", "078-05-1120")]),
        ("at 192.168.1.20.", [("IP_ADDRESS", "192.168.1.20")]),
        ("version 1.2.3 and 999.1.1.1", []),
        ("bind 0.0.0.0 and 127.0.0.1 and ::1", []),
        (
            "a@b.co and first.last+tag@sub.example.org",
            [("EMAIL_ADDRESS", "a@b.co"), ("EMAIL_ADDRESS", "first.last+tag@sub.example.org")],
        ),
        ("on 2024-03-15 14:30 and 15.03.2024", []),
        ("pi is 3.14159265 and e 2.718281828", []),
        ("call +1 (212) 555-0187 now", [("PHONE_NUMBER", "+1 (212) 555-0187")]),
        ("phone: 2125550187", [("PHONE_NUMBER", "2125550187")]),
        ("order 2125550187 shipped", []),  # ten digits without a word saying it is a phone
    ],
)
def test_personal_data(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@given(st.lists(st.integers(0, 9), min_size=12, max_size=18))
def test_luhn_check_digit_makes_any_number_valid(digits: list[int]) -> None:
    body = "".join(map(str, digits))
    check = next(d for d in "0123456789" if luhn_ok(body + d))
    assert luhn_ok(body + check)
    assert not luhn_ok(body + str((int(check) + 1) % 10))


def test_numbers_failing_their_checksum_or_rules_are_not_reported_as_such() -> None:
    assert "IBAN_CODE" not in {k for k, _ in kinds("GB82 WEST 1234 5698 7654 33")}  # mod-97 fails
    # never issued as SSNs (the digit groups may still read as a phone number)
    assert "US_SSN" not in {k for k, _ in kinds("id 000-12-3456 or 666-12-3456 or 900-12-3456")}


def test_iban_checksum() -> None:
    assert iban_ok("NL91ABNA0417164300") and iban_ok("nl91 abna 0417 1643 00")
    assert not iban_ok("NL91ABNA041716430")  # the Netherlands' IBANs have 18 characters


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("key AKIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
        ("token ghp_" + "a1" * 18, "GITHUB_TOKEN", "ghp_" + "a1" * 18),
        ("password=hunter2", "PASSWORD", "hunter2"),
        ("postgres://u:s3cret@h/db", "URL_CREDENTIALS", "s3cret"),
        ("xoxb-123456789012-abcdefghij", "SLACK_TOKEN", "xoxb-123456789012-abcdefghij"),
    ],
)
def test_secrets(text: str, kind: str, value: str) -> None:
    found = [(f.kind, text[f.start : f.end]) for f in detect_secrets_in(text)]
    assert found == [(kind, value)]


@pytest.mark.parametrize(
    "text",
    [
        "the password is incorrect",
        "reset your password: click the link",
        "token limits apply",
        "api key rotation policy",
    ],
)
def test_talk_about_secrets_is_not_a_secret(text: str) -> None:
    assert detect_secrets_in(text, plugins=plugins_available()) == []


def test_secrets_detector_choice() -> None:
    with pytest.raises(ValueError, match="detector"):
        Secrets("s", modes=frozenset({"pre_call"}), detector="magic")
    assert Secrets("s", modes=frozenset({"pre_call"}), detector="builtin").plugins is False


@pytest.mark.skipif(not plugins_available(), reason="detect-secrets not installed")
def test_detect_secrets_plugins_add_what_ours_do_not_know() -> None:
    text = "mailchimp 0123456789abcdef0123456789abcdef-us12"
    assert detect_secrets_in(text) == []
    assert [f.kind for f in detect_secrets_in(text, plugins=True)] == ["MAILCHIMP_ACCESS_KEY"]
