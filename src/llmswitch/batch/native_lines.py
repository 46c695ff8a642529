"""What every native driver checks of the lines it is given, and how it answers the lines a provider
never did: shared by the OpenAI, Anthropic and Gemini drivers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.batch.native import CHAT_URL, EMBEDDINGS_URL, BatchLine, JobNotEnded, LineResult
from llmswitch.cache import prompt as prompt_cache
from llmswitch.dialects.batch_openai import BatchAnswer, not_run
from llmswitch.errors import APIStatusError, BadRequestError, UnsupportedParamsError
from llmswitch.providers import params

if TYPE_CHECKING:
    from llmswitch.router.deployments import Target


def line_error(index: int, line: BatchLine, message: str, *, param: str | None = None) -> BadRequestError:
    """The error refusing a whole batch for one line, naming it by position and ``custom_id``."""
    return BadRequestError(
        f"line {index + 1} (custom_id {line.custom_id!r}): {message}",
        status_code=400,
        provider="llmswitch",
        param=param,
        error_type="invalid_request_error",
    )


def on_line(index: int, line: BatchLine, exc: APIStatusError) -> APIStatusError:
    """``exc`` (a line's refusal) of the same class, its message naming the line."""
    out = type(exc)(
        f"line {index + 1} (custom_id {line.custom_id!r}): {exc.message}",
        status_code=exc.status_code or 400,
        provider=exc.provider,
        model=exc.model,
        body=exc.body,
        code=exc.code,
        error_type=exc.type,
        param=exc.param,
    )
    if isinstance(exc, UnsupportedParamsError) and isinstance(out, UnsupportedParamsError):
        out.params = exc.params
    return out


def check_lines(lines: list[BatchLine], *, provider: str, chat_only: bool = False) -> None:
    """Refuse an empty batch, a repeated ``custom_id``, and lines for an endpoint the provider cannot batch."""
    if not lines:
        raise BadRequestError("a batch needs at least one line", status_code=400, provider="llmswitch")
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if line.custom_id in seen:
            raise line_error(i, line, "custom_id is used by an earlier line", param="custom_id")
        seen.add(line.custom_id)
        if line.url not in (CHAT_URL, EMBEDDINGS_URL):
            raise line_error(i, line, f"url must be {CHAT_URL} or {EMBEDDINGS_URL}", param="url")
        if chat_only and line.url != CHAT_URL:
            raise line_error(
                i,
                line,
                f"{provider}'s batch API runs chat lines only, not {line.url}: run it gateway-side",
                param="url",
            )
        model = line.body.get("model")
        if not isinstance(model, str) or not model:
            raise line_error(i, line, "body.model must name the model", param="body.model")


def too_large(provider: str, what: str) -> BadRequestError:
    return BadRequestError(
        f"the batch is larger than {provider} takes in one batch ({what}): split it into smaller batches",
        status_code=400,
        provider="llmswitch",
        error_type="invalid_request_error",
    )


def with_params(line: BatchLine, deployment: Target) -> dict[str, Any]:
    """A chat line's body with the deployment's own parameters under it (the line's win), as the router
    adds them to a single call; prompt-cache settings are the gateway's, not the provider's."""
    own = deployment.params
    if not own or line.url != CHAT_URL:
        return line.body
    if not prompt_cache.SETTINGS.isdisjoint(own):
        own = prompt_cache.without_settings(own)
    return {**own, **line.body}


def single_model(lines: list[BatchLine]) -> str:
    """The one model a provider batch runs (OpenAI and Gemini take one model per batch)."""
    model = str(lines[0].body["model"])
    for i, line in enumerate(lines):
        if line.body["model"] != model:
            raise line_error(i, line, f"all lines of a batch must use one model ({model!r})", param="body.model")
    return model


def translated(req: ir.Request, deployment: Target) -> ir.Request:
    """``req`` as the deployment can take it: the router's parameter policy (map, drop or refuse with
    :class:`~llmswitch.errors.UnsupportedParamsError`), as for a single call."""
    provider = deployment.provider
    out, _ = params.apply(
        req,
        provider.policy or provider.name,
        model=deployment.model,
        deployment=deployment.group,
        drop=deployment.drop_params,
        additional=deployment.additional_drop_params,
        dialect=provider.dialect,
    )
    return out


def as_result(answer: BatchAnswer, custom_id: str | None = None) -> LineResult:
    return LineResult(custom_id if custom_id is not None else answer.custom_id, *answer[1:])


async def unanswered(
    custom_ids: Iterable[str], seen: set[str], why: str, detail: str | None = None
) -> AsyncIterator[LineResult]:
    """A result for every line the provider's output left out, so each line is answered exactly once;
    ``detail`` (why the provider's batch failed) replaces the generic message."""
    for cid in custom_ids:
        if cid not in seen:
            seen.add(cid)
            yield as_result(not_run(cid, why, detail))


def not_ended(provider: str, job_id: str, status: str) -> JobNotEnded:
    return JobNotEnded(f"{provider} batch {job_id} is {status}: its results are read once it has ended")


def why_unanswered(status: str) -> str:
    """Why a line missing from a finished job's output was not run, from the job's status."""
    return status if status in ("expired", "cancelled") else "failed"
