"""Fast JSON for the dialects (msgspec), and the small helpers every dialect shares."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from llmswitch.errors import BadRequestError

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

loads = _decoder.decode
dumps = _encoder.encode

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*?);base64,(?P<data>.*)$", re.DOTALL)


def loads_lenient(raw: bytes | str) -> Any:
    """Decode JSON that a vendor padded with whitespace (OpenRouter), or return None if it is not JSON."""
    try:
        return _decoder.decode(raw.strip() if isinstance(raw, bytes) else raw.strip().encode())
    except msgspec.DecodeError:
        return None


def split_data_url(url: str) -> tuple[str | None, str] | None:
    """``data:image/png;base64,AAA`` -> ("image/png", "AAA"); None for any other URL."""
    if not url.startswith("data:"):
        return None
    m = _DATA_URL.match(url)
    if m is None:
        return None
    return m.group("mime"), m.group("data")


def invalid(param: str, message: str) -> BadRequestError:
    """The error for a request a client got wrong, naming the field."""
    return BadRequestError(
        f"Invalid value for '{param}': {message}",
        status_code=400,
        provider="llmswitch",
        param=param,
        error_type="invalid_request_error",
    )


def parse_json_arguments(raw: str) -> Any:
    """Tool-call arguments as a value; a model that wrote broken JSON gets its text kept as a string."""
    if not raw:
        return {}
    try:
        return _decoder.decode(raw.encode())
    except msgspec.DecodeError:
        return raw
