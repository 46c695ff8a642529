"""``multipart/form-data`` bodies, as the openai SDK uploads files: the fields and the one file part.

>>> body = b'--b\\r\\nContent-Disposition: form-data; name="purpose"\\r\\n\\r\\nbatch\\r\\n--b--\\r\\n'
>>> parse_form(body, "multipart/form-data; boundary=b").fields
{'purpose': 'batch'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

from llmswitch.dialects._json import invalid
from llmswitch.errors import BadRequestError


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (filename, content)


def _params(header: str) -> tuple[str, dict[str, str]]:
    msg = Message()
    msg["content-type"] = header
    params = {k.lower(): v for k, v in msg.get_params(header="content-type", failobj=[])[1:]}
    return msg.get_content_type(), params


def parse_form(body: bytes, content_type: str | None) -> Form:
    """The form's text fields and files; a 400 naming what is wrong with it."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise invalid("content-type", "upload the file as multipart/form-data")
    _, params = _params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise invalid("content-type", "multipart/form-data needs a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    form = Form()
    parts = body.split(delimiter)
    if len(parts) < 3:
        raise invalid("body", "no form fields found in the multipart body")
    for part in parts[1:-1]:
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise invalid("body", "a multipart part has no header end")
        disposition = ""
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-disposition":
                disposition = value.strip()
        _, dparams = _params("x/y; " + disposition.partition(";")[2]) if disposition else ("", {})
        field_name = dparams.get("name")
        if not field_name:
            raise BadRequestError(
                "a multipart part has no name",
                status_code=400,
                provider="llmswitch",
                error_type="invalid_request_error",
            )
        if "filename" in dparams:
            form.files[field_name] = (dparams["filename"], content)
        else:
            form.fields[field_name] = content.decode("utf-8", "replace")
    return form
