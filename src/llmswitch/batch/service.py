"""The gateway's batch system: files, batch creation and cancellation, and the runner.

    >>> # built by the gateway when it has a store: gw.batches = BatchService(gw, BatchSettings.from_env())

Creating a batch checks every line (a 400 names the first bad line and field), the key's right to
every model the lines name, and that the batch's estimated cost (at batch prices) fits what is left of
each budget that applies; then its lines go to the store in one transaction and the runner (or the
provider's batch API) takes it from there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmswitch.batch.files import FileBox, new_id
from llmswitch.batch.lines import ParsedLines, line_error
from llmswitch.batch.native_jobs import placement, submit_native
from llmswitch.batch.runner import BatchRunner
from llmswitch.batch.settings import BatchSettings
from llmswitch.cost import estimate_cost
from llmswitch.errors import APIStatusError, NotFoundError
from llmswitch.store.batch_records import BatchRecord, FileRecord

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway
    from llmswitch.server.auth import Principal

WINDOWS = {"24h": 24 * 3600}


def not_found(kind: str, ident: str) -> NotFoundError:
    return NotFoundError(
        f"no {kind} with id {ident!r}", status_code=404, provider="llmswitch", error_type="invalid_request_error"
    )


def owner_of(principal: Principal) -> str:
    """Files and batches belong to the key that made them; the master key's are ``""`` and it sees all."""
    return "" if principal.is_master else principal.key_hash


class BatchService:
    """Files and batches for one gateway instance."""

    def __init__(self, gw: Gateway, settings: BatchSettings) -> None:
        self.gw = gw
        self.settings = settings
        storage = settings.storage
        if storage == "auto":
            storage = "store" if type(gw.store).__name__ == "PostgresStore" else "local"
        self.files = FileBox(gw.store, settings.files_dir, storage)
        self.runner = BatchRunner(gw, self.files, settings)

    async def start(self) -> None:
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()

    # ---------------------------------------------------------------- files

    async def file_for(self, principal: Principal, file_id: str) -> FileRecord:
        rec: FileRecord | None = await self.gw.store.get_file(file_id)
        if rec is None or not (principal.is_master or rec.owner == owner_of(principal)):
            raise not_found("file", file_id)
        return rec

    async def content_of(self, rec: FileRecord) -> bytes:
        content = await self.files.read(rec)
        if content is None:
            raise APIStatusError(
                f"the content of {rec.id!r} is kept on another gateway instance's disk; set "
                "LLMSWITCH_BATCH_FILE_STORAGE=store so that every instance can read it",
                status_code=404,
                provider="llmswitch",
                error_type="invalid_request_error",
            )
        return content

    # ---------------------------------------------------------------- batches

    async def batch_for(self, principal: Principal, batch_id: str) -> BatchRecord:
        rec: BatchRecord | None = await self.gw.store.get_batch(batch_id)
        if rec is None or not (principal.is_master or rec.owner == owner_of(principal)):
            raise not_found("batch", batch_id)
        return rec

    async def create(
        self,
        principal: Principal,
        parsed: ParsedLines,
        *,
        endpoint: str,
        input_file_id: str,
        completion_window: str = "24h",
        metadata: dict[str, str] | None = None,
        api: str = "openai",
        batch_id: str | None = None,
    ) -> BatchRecord:
        groups = []
        for model in parsed.models:
            try:
                groups.append(self.gw.authorize_model(principal, model))
            except APIStatusError as exc:
                raise exc from None
            if not self.gw.router.has(groups[-1]):
                raise line_error(
                    None,
                    "model",
                    f"model {model!r} is not served here; available: {', '.join(self.gw.router.model_names())}",
                )
        estimate = await self._check_budget(principal, groups[0], parsed)
        native = None
        native_ok = self.settings.native and api == "openai" and len(groups) == 1
        where = placement(self.gw, groups[0]) if native_ok else None
        if where is not None:
            # sent before anything is stored: the provider refusing the batch is the caller's 4xx, at once
            native = await submit_native(
                self.gw, where, parsed.lines, url=endpoint, completion_window=completion_window, metadata=metadata
            )
        now = int(time.time())
        rec = BatchRecord(
            id=batch_id or new_id("batch_"),
            owner=owner_of(principal),
            api="anthropic" if api == "anthropic" else "openai",
            endpoint=endpoint,
            model_group=groups[0],
            input_file_id=input_file_id,
            completion_window=completion_window,
            status="in_progress",
            mode="native" if native is not None else "gateway",
            native=native,
            created_at=now,
            in_progress_at=now,
            expires_at=now + WINDOWS.get(completion_window, WINDOWS["24h"]),
            total=len(parsed.lines),
            metadata=metadata,
            estimate=estimate,
        )
        try:
            await self.gw.store.create_batch(rec, parsed.lines)
        except BaseException:
            if native is not None and where is not None:
                # the store did not take it: the provider's job would run unknown to anyone, so stop it
                await _cancel_quietly(where[0], native)
            raise
        self.runner.wake()
        return rec

    async def _check_budget(self, principal: Principal, group: str, parsed: ParsedLines) -> float:
        """The batch's estimated cost at batch prices; a 400 when it does not fit a budget that applies.

        The estimate is checked against what is left of each budget, then given back: each line is then
        admitted, reserved and settled as a request is, so concurrent spending overshoots a budget by at
        most the lines in flight.
        """
        acc = self.gw.accounting
        prices = acc.price_hint(self.gw.router, group) or ()
        output = parsed.output_tokens or acc.default_output_tokens * len(parsed.lines)
        estimate = 0.0
        for price in prices:
            try:
                estimate = max(estimate, estimate_cost(price, parsed.prompt_tokens, output, batch=True))
            except Exception:
                continue
        limiter = acc.limiter
        limits = [lim for lim in acc.limits_for(principal, group) if lim.max_budget is not None]
        if limiter is None or not limits or not estimate:
            return estimate
        # a budget admits while what is spent and reserved is below it, so one request's estimate may pass
        # it: a second, empty admission while the first holds the estimate says whether all of it fits
        from llmswitch.limits import LimiterError
        from llmswitch.limits.errors import BudgetsUnavailableError
        from llmswitch.store.errors import StoreError

        try:
            held = await limiter.admit(limits, tokens=0, cost=estimate)
            probe = await limiter.admit(limits, tokens=0, cost=0.0) if held.allowed else held
        except (BudgetsUnavailableError, StoreError, LimiterError, OSError) as exc:
            # budgets that cannot be read now: the batch is refused with a 503 (retry), never started blind
            raise acc._unavailable(exc) from exc
        for admitted in (held, probe):
            if admitted.allowed:
                await limiter.settle(admitted, 0.0, actual_tokens=0)
        if not probe.allowed:
            from llmswitch.server.accounting import BudgetExceededError

            ref = probe.which_limit
            if ref.kind != "max_budget":
                from llmswitch.errors import RateLimitError

                raise RateLimitError(
                    probe.message, status_code=429, provider="llmswitch", retry_after=probe.retry_after_s
                )
            raise BudgetExceededError(
                f"this batch's estimated cost (${estimate:.6f} at batch prices) does not fit in what is left of "
                f"the {ref.subject.split(':', 1)[0]}'s budget",
                status_code=400,
                provider="llmswitch",
                error_type="budget_exceeded",
                param=ref.subject.split(":", 1)[0],
            )
        return estimate

    async def cancel(self, principal: Principal, batch_id: str) -> BatchRecord:
        rec = await self.batch_for(principal, batch_id)
        now = int(time.time())
        moved: BatchRecord | None = await self.gw.store.update_batch(
            batch_id, when=("validating", "in_progress"), status="cancelling", cancelling_at=now
        )
        self.runner.wake()  # a native batch's cancel is passed on by whichever instance tends it
        if moved is None and rec.status not in ("cancelling", "cancelled"):
            fresh = await self.gw.store.get_batch(batch_id)
            if fresh is not None and fresh.status not in ("cancelling", "cancelled"):
                raise line_error(None, "batch_id", f"a batch whose status is {fresh.status!r} cannot be cancelled")
        return moved or rec


async def _cancel_quietly(driver: Any, native: dict[str, Any]) -> None:
    import contextlib

    from llmswitch.batch.native import NativeJob

    with contextlib.suppress(Exception):
        await driver.cancel(NativeJob(provider=native["provider"], job_id=native["job_id"], state=native["state"]))
