"""LiteLLM's file and batch calls: ``create_file``, ``file_content``, ``create_batch``, ``retrieve_batch``,
``list_batches``, ``cancel_batch`` and their async forms (``acreate_file`` …).

    >>> f = create_file(file=open("batch.jsonl", "rb"), purpose="batch", custom_llm_provider="openai")  # doctest: +SKIP
    >>> b = create_batch(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h",
    ...                  custom_llm_provider="openai")  # doctest: +SKIP
    >>> retrieve_batch(b.id, custom_llm_provider="openai").status  # doctest: +SKIP
    'completed'

Where the calls go, by ``custom_llm_provider``:

- ``openai`` (the default) and ``azure``: straight to the provider's Files and Batch APIs (``api_base``
  and ``api_key`` as for ``completion``; an llmswitch gateway's ``…/v1`` works as well, and then runs
  the batch on whatever its model group maps to).
- ``anthropic`` and ``gemini``: to their batch APIs through llmswitch's native drivers. These
  providers have no Files API, so the file and the batch's record are kept on this machine, in
  ``LLMSWITCH_SDK_BATCH_DIR`` (``~/.llmswitch/batches`` by default); ``retrieve_batch`` polls the
  provider and, once the job has ended, writes the output and error files there, in OpenAI's format.
- any other provider has no batch API: a :class:`~llmswitch.errors.BadRequestError` says so (send the
  batch to an llmswitch gateway instead, which runs its lines itself).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from llmswitch import _sync
from llmswitch.dialects._json import dumps, loads
from llmswitch.errors import BadRequestError, NotFoundError

_HTTP_PROVIDERS = ("openai", "azure")
_NATIVE_PROVIDERS = ("anthropic", "gemini")


class BatchResult(dict[str, Any]):
    """An OpenAI-shaped object (``FileObject``, ``Batch``, a list page): attributes and ``model_dump()``."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc
        return BatchResult(value) if isinstance(value, dict) else value

    def model_dump(self) -> dict[str, Any]:
        return dict(self)


class FileContent:
    """A file's bytes, read as the openai SDK's binary response is: ``.content``, ``.text``, ``.read()``."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode()

    def read(self) -> bytes:
        return self.content


def _provider(custom_llm_provider: str | None) -> str:
    name = (custom_llm_provider or "openai").lower()
    if name in _HTTP_PROVIDERS or name in _NATIVE_PROVIDERS:
        return name
    raise BadRequestError(
        f"{name!r} has no batch API llmswitch can drive; send the batch to an llmswitch gateway "
        "(custom_llm_provider='openai', api_base='<gateway>/v1'), which runs its lines itself",
        status_code=400,
        provider="llmswitch",
        param="custom_llm_provider",
    )


def _deployment(provider: str, model: str | None, kwargs: dict[str, Any]) -> Any:
    from llmswitch.router.router import Router

    params: dict[str, Any] = {"model": f"{provider}/{model or 'batch'}"}
    for name in ("api_key", "api_base", "api_version", "extra_headers", "timeout"):
        if kwargs.get(name) is not None:
            params[name] = kwargs[name]
    return Router([{"model_name": "batch", "litellm_params": params}]).deployments("batch")[0]


def _openai(kwargs: dict[str, Any], provider: str) -> Any:
    from llmswitch.batch.native_openai import OpenAIBatches

    return OpenAIBatches(_deployment(provider, kwargs.get("model"), kwargs))


def _file_bytes(file: Any) -> tuple[str, bytes]:
    """``file`` as LiteLLM and the openai SDK take it: bytes, a binary file, a path, or ``(name, content)``."""
    if isinstance(file, tuple):
        name, content = file[0], file[1]
        return str(name), content.read() if hasattr(content, "read") else bytes(content)
    if isinstance(file, bytes | bytearray):
        return "batch.jsonl", bytes(file)
    if isinstance(file, str | os.PathLike):
        path = Path(file)
        return path.name, path.read_bytes()
    data = file.read()
    return Path(getattr(file, "name", "batch.jsonl")).name, data if isinstance(data, bytes) else data.encode()


# ---------------------------------------------------------------- the local book (anthropic, gemini)


def _book() -> Path:
    root = Path(os.environ.get("LLMSWITCH_SDK_BATCH_DIR") or Path.home() / ".llmswitch" / "batches")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _local(kind: str, ident: str) -> Path:
    if not ident.replace("-", "").replace("_", "").isalnum():
        raise NotFoundError(f"no {kind} {ident!r}", status_code=404, provider="llmswitch")
    return _book() / ident


def _save_file(purpose: str, filename: str, content: bytes, file_id: str | None = None) -> BatchResult:
    file_id = file_id or f"file-{secrets.token_hex(12)}"
    record = {
        "id": file_id,
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()),
        "expires_at": None,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
    }
    _local("file", file_id).with_suffix(".jsonl").write_bytes(content)
    _local("file", file_id).with_suffix(".json").write_bytes(dumps(record))
    return BatchResult(record)


def _read_local(kind: str, ident: str, suffix: str) -> bytes:
    path = _local(kind, ident).with_suffix(suffix)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFoundError(f"no {kind} {ident!r} in {_book()}", status_code=404, provider="llmswitch") from exc


# ---------------------------------------------------------------- files


async def acreate_file(
    file: Any, purpose: str = "batch", custom_llm_provider: str = "openai", **kwargs: Any
) -> BatchResult:
    """Upload a batch input file (``purpose="batch"``); the file object."""
    provider = _provider(custom_llm_provider)
    filename, content = _file_bytes(file)
    if provider in _NATIVE_PROVIDERS:
        return _save_file(purpose, filename, content)
    from llmswitch.dialects import batch_openai

    api = _openai(kwargs, provider)
    content_type, body = batch_openai.encode_multipart(
        {"purpose": purpose}, filename=filename, content=content, boundary=secrets.token_hex(16)
    )
    raw = await api.api.send("POST", api._url("files"), api._headers(content_type), body)
    return BatchResult(loads(raw))


async def afile_content(file_id: str, custom_llm_provider: str = "openai", **kwargs: Any) -> FileContent:
    """A file's bytes (an output file's JSONL, once its batch has completed)."""
    provider = _provider(custom_llm_provider)
    if provider in _NATIVE_PROVIDERS:
        return FileContent(_read_local("file", file_id, ".jsonl"))
    api = _openai(kwargs, provider)
    return FileContent(await api.api.send("GET", api._url(f"files/{file_id}/content"), api._headers(None)))


# ---------------------------------------------------------------- batches


async def acreate_batch(
    completion_window: str = "24h",
    endpoint: str = "/v1/chat/completions",
    input_file_id: str = "",
    custom_llm_provider: str = "openai",
    metadata: dict[str, str] | None = None,
    **kwargs: Any,
) -> BatchResult:
    """Start a batch over an uploaded file; the batch object (poll it with :func:`aretrieve_batch`)."""
    provider = _provider(custom_llm_provider)
    if provider in _HTTP_PROVIDERS:
        api = _openai(kwargs, provider)
        create = {"input_file_id": input_file_id, "endpoint": endpoint, "completion_window": completion_window}
        if metadata is not None:
            create["metadata"] = metadata  # type: ignore[assignment]
        return BatchResult(await api.api.json("POST", api._url("batches"), api._headers(), create))
    from llmswitch.batch.native import BatchLine, native_for

    lines = []
    model = kwargs.get("model")
    for number, raw in enumerate(_read_local("file", input_file_id, ".jsonl").splitlines(), start=1):
        if not raw.strip():
            continue
        item = loads(raw)
        body = dict(item.get("body") or {})
        line_model = str(body.get("model") or model or "")
        line_model = line_model.split("/", 1)[1] if line_model.startswith(f"{provider}/") else line_model
        if not line_model:
            raise BadRequestError(f"line {number}: body.model is required", status_code=400, provider="llmswitch")
        model = model or line_model
        body["model"] = line_model
        lines.append(BatchLine(custom_id=str(item.get("custom_id")), url=str(item.get("url") or endpoint), body=body))
    deployment = _deployment(provider, model, kwargs)
    driver = native_for(deployment)
    assert driver is not None
    job = await driver.submit(lines, completion_window=completion_window, metadata=metadata)
    now = int(time.time())
    batch_id = f"batch_{secrets.token_hex(12)}"
    batch: dict[str, Any] = {
        "id": batch_id,
        "object": "batch",
        "endpoint": endpoint,
        "model": model,
        "errors": None,
        "input_file_id": input_file_id,
        "completion_window": completion_window,
        "status": "in_progress",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": now,
        "expires_at": now + 24 * 3600,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
        "metadata": metadata,
    }
    # the key is never written down: retrieve_batch takes it again (argument or environment)
    book = {"batch": batch, "provider": provider, "job": {"provider": job.provider, "job_id": job.job_id,
            "state": job.state}, "api_base": kwargs.get("api_base")}  # fmt: skip
    _local("batch", batch_id).with_suffix(".json").write_bytes(dumps(book))
    return BatchResult(batch)


async def aretrieve_batch(batch_id: str, custom_llm_provider: str = "openai", **kwargs: Any) -> BatchResult:
    """The batch object, its status and ``request_counts`` up to date."""
    provider = _provider(custom_llm_provider)
    if provider in _HTTP_PROVIDERS:
        api = _openai(kwargs, provider)
        return BatchResult(await api.api.json("GET", api._url(f"batches/{batch_id}"), api._headers()))
    book = loads(_read_local("batch", batch_id, ".json"))
    batch = book["batch"]
    if batch["status"] in ("completed", "failed", "expired", "cancelled"):
        return BatchResult(batch)
    from llmswitch.batch.native import NativeJob, native_for
    from llmswitch.dialects.batch_openai import BatchAnswer, encode_output_line

    kwargs.setdefault("api_base", book.get("api_base"))
    driver = native_for(_deployment(book["provider"], batch["model"], kwargs))
    assert driver is not None
    job = NativeJob(**book["job"])
    status = await driver.poll(job)
    book["job"]["state"] = job.state
    batch["request_counts"] = {"total": status.total or batch["request_counts"]["total"],
                               "completed": status.completed, "failed": status.failed}  # fmt: skip
    if status.terminal:
        ok: list[bytes] = []
        bad: list[bytes] = []
        async for result in driver.results(job):
            answer = BatchAnswer(result.custom_id, result.status_code, result.body, result.usage)
            entry = encode_output_line(answer, line_id=f"batch_req_{secrets.token_hex(12)}", request_id=batch_id)
            (ok if result.status_code == 200 else bad).append(dumps(entry) + b"\n")
        now = int(time.time())
        if ok:
            batch["output_file_id"] = _save_file("batch_output", f"{batch_id}_output.jsonl", b"".join(ok))["id"]
        if bad:
            batch["error_file_id"] = _save_file("batch_output", f"{batch_id}_error.jsonl", b"".join(bad))["id"]
        batch["status"] = status.status
        batch["finalizing_at"] = now
        stamp = {
            "completed": "completed_at",
            "failed": "failed_at",
            "expired": "expired_at",
            "cancelled": "cancelled_at",
        }
        batch[stamp[status.status]] = now
        if status.error:
            batch["errors"] = {"object": "list", "data": [{"code": "batch_failed", "message": status.error}]}
    _local("batch", batch_id).with_suffix(".json").write_bytes(dumps(book))
    return BatchResult(batch)


async def alist_batches(
    custom_llm_provider: str = "openai", limit: int | None = None, after: str | None = None, **kwargs: Any
) -> BatchResult:
    """A page of batches, newest first (``data``, ``has_more``)."""
    provider = _provider(custom_llm_provider)
    if provider in _HTTP_PROVIDERS:
        api = _openai(kwargs, provider)
        query = "&".join(f"{k}={v}" for k, v in (("limit", limit), ("after", after)) if v is not None)
        url = api._url("batches")
        url += ("&" if "?" in url else "?") + query if query else ""
        return BatchResult(await api.api.json("GET", url, api._headers()))
    books = [loads(p.read_bytes()) for p in _book().glob("batch_*.json")]
    batches = sorted((b["batch"] for b in books if b["provider"] == provider), key=lambda b: -b["created_at"])
    if after is not None:
        ids = [b["id"] for b in batches]
        batches = batches[ids.index(after) + 1 :] if after in ids else []
    page = batches[: limit or 20]
    return BatchResult(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(batches) > len(page),
        }
    )


async def acancel_batch(batch_id: str, custom_llm_provider: str = "openai", **kwargs: Any) -> BatchResult:
    """Ask for the batch to stop; lines already answered stay in its output."""
    provider = _provider(custom_llm_provider)
    if provider in _HTTP_PROVIDERS:
        api = _openai(kwargs, provider)
        return BatchResult(await api.api.json("POST", api._url(f"batches/{batch_id}/cancel"), api._headers(), {}))
    from llmswitch.batch.native import NativeJob, native_for

    book = loads(_read_local("batch", batch_id, ".json"))
    batch = book["batch"]
    if batch["status"] in ("in_progress", "validating"):
        kwargs.setdefault("api_base", book.get("api_base"))
        driver = native_for(_deployment(book["provider"], batch["model"], kwargs))
        assert driver is not None
        job = NativeJob(**book["job"])
        await driver.cancel(job)
        book["job"]["state"] = job.state
        batch["status"] = "cancelling"
        batch["cancelling_at"] = int(time.time())
        _local("batch", batch_id).with_suffix(".json").write_bytes(dumps(book))
    return BatchResult(batch)


def create_file(file: Any, purpose: str = "batch", custom_llm_provider: str = "openai", **kwargs: Any) -> BatchResult:
    """:func:`acreate_file`, blocking."""
    return _sync.run(acreate_file(file, purpose, custom_llm_provider, **kwargs))


def file_content(file_id: str, custom_llm_provider: str = "openai", **kwargs: Any) -> FileContent:
    """:func:`afile_content`, blocking."""
    return _sync.run(afile_content(file_id, custom_llm_provider, **kwargs))


def create_batch(
    completion_window: str = "24h",
    endpoint: str = "/v1/chat/completions",
    input_file_id: str = "",
    custom_llm_provider: str = "openai",
    metadata: dict[str, str] | None = None,
    **kwargs: Any,
) -> BatchResult:
    """:func:`acreate_batch`, blocking."""
    return _sync.run(acreate_batch(completion_window, endpoint, input_file_id, custom_llm_provider, metadata, **kwargs))


def retrieve_batch(batch_id: str, custom_llm_provider: str = "openai", **kwargs: Any) -> BatchResult:
    """:func:`aretrieve_batch`, blocking."""
    return _sync.run(aretrieve_batch(batch_id, custom_llm_provider, **kwargs))


def list_batches(
    custom_llm_provider: str = "openai", limit: int | None = None, after: str | None = None, **kwargs: Any
) -> BatchResult:
    """:func:`alist_batches`, blocking."""
    return _sync.run(alist_batches(custom_llm_provider, limit, after, **kwargs))


def cancel_batch(batch_id: str, custom_llm_provider: str = "openai", **kwargs: Any) -> BatchResult:
    """:func:`acancel_batch`, blocking."""
    return _sync.run(acancel_batch(batch_id, custom_llm_provider, **kwargs))
