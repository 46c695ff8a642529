"""Batches run at the provider (OpenAI, Azure, Anthropic, Gemini): submitted once, then tended by any instance.

The provider's job (:class:`llmswitch.batch.native.NativeJob`, plain JSON) is kept on the batch's row.
Every ``poll_s`` seconds one instance (the holder of the batch's lease) polls it, keeps its
``request_counts`` up to date, passes a cancel on, and once the job has ended writes each line's answer
into the store (a line answered once, whatever instance reads the results, however often) and records
its spend at batch prices; the batch then ends as a gateway-run one does, its files written from the store.
Lines the provider never ran (cancelled, expired) are left unanswered and written with the batch's ending.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.batch.execute import line_request
from llmswitch.dialects._json import dumps, loads
from llmswitch.store.batch_records import BatchRecord, ClaimedLine, LineOutcome
from llmswitch.store.records import CallType

if TYPE_CHECKING:
    from llmswitch.batch.native import NativeBatches
    from llmswitch.batch.runner import BatchRunner
    from llmswitch.router.deployments import Target
    from llmswitch.server.app import Gateway

log = logging.getLogger("llmswitch.batch")

# a line the provider never ran is answered with one of these; the batch's ending writes it instead
_NEVER_RUN = frozenset({"batch_cancelled", "batch_expired", "batch_failed"})
_PAGE = 1000


def placement(gw: Gateway, group: str) -> tuple[NativeBatches, Target] | None:
    """The batch API a model group's batches go to, and the deployment it belongs to; ``None``: gateway-run."""
    try:
        from llmswitch.batch.native import native_for
    except ImportError:  # pragma: no cover - the native drivers are part of llmswitch, but stay optional here
        return None
    try:
        targets = gw.router.deployments(group)
    except Exception:
        return None
    for target in targets:
        driver = native_for(target)
        if driver is not None:
            return driver, target
    return None


def _target(gw: Gateway, batch: BatchRecord) -> Target | None:
    wanted = (batch.native or {}).get("deployment")
    try:
        targets = gw.router.deployments(batch.model_group)
    except Exception:
        return None
    return next((t for t in targets if t.id == wanted), None)


async def submit_native(
    gw: Gateway,
    where: tuple[NativeBatches, Target],
    lines: list[tuple[str, str]],
    *,
    url: str,
    completion_window: str,
    metadata: dict[str, str] | None,
) -> dict[str, Any]:
    """Send the lines to the provider; what the batch's row keeps of the job."""
    from llmswitch.batch.native import BatchLine

    driver, target = where
    batch_lines = []
    for custom_id, body_text in lines:
        body = loads(body_text)
        body["model"] = target.model
        batch_lines.append(BatchLine(custom_id=custom_id, url=url, body=body))
    job = await driver.submit(batch_lines, completion_window=completion_window, metadata=metadata)
    return {"deployment": target.id, "provider": job.provider, "job_id": job.job_id, "state": job.state}


class NativeTender:
    """Polls the native batches' jobs and writes their results, for one gateway instance."""

    def __init__(self, gw: Gateway, runner: BatchRunner) -> None:
        self.gw = gw
        self.runner = runner
        self._polled: dict[str, float] = {}  # batch id -> when this instance last polled its job

    async def tend(self, batch: BatchRecord) -> None:
        store = self.runner.store
        if batch.status not in ("in_progress", "cancelling", "validating"):
            if batch.status == "finalizing":
                await self.runner.finish_if_quiet(batch)
            return
        native = dict(batch.native or {})
        cancel_due = batch.status == "cancelling" and not native.get("cancel_sent")
        last = self._polled.get(batch.id)
        if last is not None and not cancel_due and time.monotonic() - last < self.runner.settings.native_poll_s:
            return
        if not await store.lease_batch(
            batch.id, self.runner.worker, max(self.runner.settings.lease_s, 2 * self.runner.settings.native_poll_s)
        ):
            return  # another instance tends it
        self._polled[batch.id] = time.monotonic()
        if len(self._polled) > 10_000:
            self._polled.clear()
        from llmswitch.batch.native import NativeJob, native_for

        target = _target(self.gw, batch)
        driver = native_for(target) if target is not None else None
        now = int(time.time())
        if target is None or driver is None:
            await store.update_batch(
                batch.id,
                status="failed",
                failed_at=now,
                errors=[
                    {
                        "code": "deployment_gone",
                        "message": "the deployment this batch was sent to is no longer configured",
                        "line": None,
                        "param": None,
                    }
                ],
            )
            return
        job = NativeJob(provider=native["provider"], job_id=native["job_id"], state=dict(native.get("state") or {}))
        if batch.status == "cancelling" and not native.get("cancel_sent"):
            await driver.cancel(job)
            native["cancel_sent"] = True
        status = await driver.poll(job)
        native["state"] = job.state
        if not status.terminal:
            await store.update_batch(batch.id, native=native, completed=status.completed, failed=status.failed)
            return
        await self._write_results(batch, driver, job, target)
        fields: dict[str, Any] = {"native": native, "status": "finalizing", "finalizing_at": now}
        if status.status == "expired":
            fields["expired_at"] = now
        elif status.status == "cancelled" and not batch.cancelling_at:
            fields["cancelling_at"] = now
        elif status.status == "failed":
            fields["failed_at"] = now
            fields["errors"] = [
                {
                    "code": "batch_failed",
                    "message": status.error or "the provider failed the batch",
                    "line": None,
                    "param": None,
                }
            ]
        moved = await store.update_batch(batch.id, when=("in_progress", "cancelling", "validating"), **fields)
        if moved is not None:
            await self.runner.finish_if_quiet(moved)

    async def _write_results(self, batch: BatchRecord, driver: NativeBatches, job: Any, target: Target) -> None:
        store = self.runner.store
        numbers: dict[str, int] = {}
        after = 0
        while page := await store.batch_lines(batch.id, after, _PAGE):
            numbers.update((line.custom_id, line.line_no) for line in page if line.state != "done")
            after = page[-1].line_no
        outcomes: list[LineOutcome] = []
        async for result in driver.results(job):
            line_no = numbers.pop(result.custom_id, None)
            if line_no is None:
                continue  # answered before (a second read after a restart), or never sent
            error = result.body.get("error") if result.status_code != 200 else None
            if isinstance(error, dict) and error.get("code") in _NEVER_RUN:
                continue
            spend_id = f"{batch.id}-{line_no}"
            response = {"status_code": result.status_code, "request_id": spend_id, "body": result.body}
            outcomes.append(
                LineOutcome(line_no, result.status_code, dumps(response).decode(), result.status_code >= 300)
            )
            await self._record_spend(batch, line_no, result.usage, result.status_code, target)
            if len(outcomes) >= _PAGE:
                await store.finish_batch_lines(batch.id, outcomes)
                outcomes = []
        await store.finish_batch_lines(batch.id, outcomes)

    async def _record_spend(
        self, batch: BatchRecord, line_no: int, usage: ir.Usage | None, status: int, target: Target
    ) -> None:
        principal = self.gw.keys.principal_for(batch.owner)
        line = ClaimedLine(batch.id, line_no, "", "", 0)
        request = line_request(batch, line, principal)
        request.state["model"] = batch.model_group
        if usage is None and status == 200:
            usage = ir.Usage()
        if usage is None:
            return
        call_type: CallType = "embeddings" if batch.endpoint == "/v1/embeddings" else "chat"
        from llmswitch.router.outcomes import Route

        route = Route(target, batch.model_group, 1, batch.model_group)
        try:
            await self.gw.accounting.finish(
                request,
                None,
                status=status,
                route=route,
                usage=usage,
                started=time.perf_counter(),
                call_type=call_type,
                batch=True,
            )
        except Exception as exc:  # the answer is kept; its record's loss is said loudly
            log.error("could not record the spend of batch %s line %d: %s", batch.id, line_no, exc)
