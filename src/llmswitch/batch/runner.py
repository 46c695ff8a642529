"""Gateway-run batches: every instance claims lines of the batches in progress and answers them.

Each instance runs a loop that looks at the active batches every ``poll_s`` seconds:

- ``in_progress``: a *pump* claims lines (with a lease, renewed while they run), answers each through
  :func:`~llmswitch.batch.execute.answer_line` at a bounded concurrency and at the pace the model
  group's rpm allows, and writes the answers in small groups. A line is written only while it is not
  yet answered, so two instances (or one that was killed and its lease taken over) write it once.
- every line answered, the completion window passed, or a cancel asked for: the batch moves on to
  ``finalizing`` or stays ``cancelling`` until no live lease is left, then one instance (holding the
  batch's lease) writes the output and error files and ends the batch.

A killed instance's lines are claimed again once their leases run out (``lease_s``); the lines it had
in flight are the only ones that may have been sent upstream twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from llmswitch import procid
from llmswitch.batch.execute import RetryLater, answer_line, error_outcome
from llmswitch.batch.files import FileBox
from llmswitch.batch.output import write_outputs
from llmswitch.batch.settings import BatchSettings
from llmswitch.server import faces
from llmswitch.store.batch_records import BatchRecord, ClaimedLine, LineOutcome

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway

log = logging.getLogger("llmswitch.batch")

LOOK_EVERY_S = 0.2  # how often a pump re-reads its batch's status (a cancel, the window's end)


class AnswerWriter:
    """Writes a batch's answers as they come: whatever finished while the last write ran goes in the next
    one, so an answer waits one store round trip at most. A killed instance loses (and another instance
    asks again) only its lines in flight and the answers of that one round trip."""

    def __init__(self, store: Any, batch_id: str) -> None:
        self.store = store
        self.batch_id = batch_id
        self.pending: list[LineOutcome] = []
        self._ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"llmswitch-batch-writer-{batch_id}")

    def add(self, outcome: LineOutcome) -> None:
        self.pending.append(outcome)
        self._ready.set()

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            await self._write()

    async def _write(self) -> None:
        while self.pending:
            taken = self.pending[:]
            try:
                await self.store.finish_batch_lines(self.batch_id, taken)
            except Exception as exc:  # the store away: the leases keep the lines ours meanwhile
                log.warning("writing batch %s answers failed (will retry): %s", self.batch_id, exc)
                await asyncio.sleep(0.5)
                continue
            del self.pending[: len(taken)]

    async def close(self) -> None:
        """Write what is left, and stop."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._write()


class Pacer:
    """Spaces line starts ``60 / rpm`` seconds apart (the model group's deployments' rpm summed)."""

    def __init__(self, rpm: float | None) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class BatchRunner:
    """The batch work of one gateway instance."""

    def __init__(self, gw: Gateway, files: FileBox, settings: BatchSettings) -> None:
        self.gw = gw
        self.store = gw.store
        self.files = files
        self.settings = settings
        self.worker = f"{os.uname().nodename}:{os.getpid()}:{procid.PREFIX}"
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._pacers: dict[str, Pacer] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._warned_at = -60.0
        from llmswitch.batch.native_jobs import NativeTender

        self.native = NativeTender(gw, self)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._loop(), name="llmswitch-batch-loop"),
            loop.create_task(self._renew(), name="llmswitch-batch-leases"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._pumps.values()]:
            task.cancel()
        for task in [*self._tasks, *self._pumps.values()]:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        self._pumps.clear()

    def wake(self) -> None:
        """Look at the batches now (one was just created or cancelled here)."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store away for a moment: try again next round, said once a minute
                now = time.monotonic()
                if now - self._warned_at >= 60.0:
                    self._warned_at = now
                    log.warning(
                        "batches cannot be run right now (retrying every %.1f s): %s", self.settings.poll_s, exc
                    )
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.poll_s):
                    await self._wake.wait()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            if self._pumps:
                try:
                    await self.store.renew_batch_leases(self.worker, self.settings.lease_s)
                except Exception as exc:
                    log.warning("renewing batch line leases failed: %s", exc)

    # ---------------------------------------------------------------- one look at the batches

    async def tick(self) -> None:
        now = int(time.time())
        for batch in await self.store.active_batches():
            if batch.mode == "native":
                try:
                    await self.native.tend(batch)
                except Exception as exc:  # the provider or the store away for a moment: next round
                    log.warning("tending native batch %s: %s", batch.id, exc)
                continue
            if batch.status == "in_progress":
                if now >= batch.expires_at:
                    await self.store.update_batch(
                        batch.id, when=("in_progress",), status="finalizing", expired_at=now, finalizing_at=now
                    )
                elif batch.id not in self._pumps:
                    self._pumps[batch.id] = asyncio.get_running_loop().create_task(
                        self._pump(batch), name=f"llmswitch-batch-{batch.id}"
                    )
            elif batch.status in ("finalizing", "cancelling") and batch.id not in self._pumps:
                await self.finish_if_quiet(batch)

    async def finish_if_quiet(self, batch: BatchRecord) -> None:
        states = await self.store.batch_line_states(batch.id)
        if states.get("leased"):
            return  # lines still running somewhere: their answers are wanted in the files
        if not await self.store.lease_batch(batch.id, self.worker, self.settings.lease_s):
            return  # another instance is writing the files
        if batch.failed_at:
            ending = "failed"
        elif batch.cancelling_at:
            ending = "cancelled"
        else:
            ending = "expired" if batch.expired_at else "completed"
        written = await write_outputs(self.store, self.files, batch, ending)
        now = int(time.time())
        stamp = {
            "cancelled": "cancelled_at",
            "expired": "expired_at",
            "completed": "completed_at",
            "failed": "failed_at",
        }
        fields: dict[str, Any] = {
            "status": ending,
            "output_file_id": written.output_file_id,
            "error_file_id": written.error_file_id,
            "completed": written.completed,
            "failed": written.failed,
            "usage": written.usage,
            stamp[ending]: getattr(batch, stamp[ending]) or now,
        }
        done = await self.store.update_batch(batch.id, when=("finalizing", "cancelling"), **fields)
        if done is not None:
            log.info("batch %s %s: %d answered, %d failed", batch.id, ending, done.completed, done.failed)

    # ---------------------------------------------------------------- running a batch's lines

    def _pacer(self, group: str) -> Pacer:
        pacer = self._pacers.get(group)
        if pacer is None:
            try:
                targets = self.gw.router.deployments(group)
            except Exception:
                targets = []
            rpm = sum(t.rpm or 0 for t in targets) if targets and all(t.rpm for t in targets) else None
            pacer = self._pacers[group] = Pacer(rpm)
        return pacer

    async def _pump(self, batch: BatchRecord) -> None:
        writer = AnswerWriter(self.store, batch.id)
        running: set[asyncio.Task[None]] = set()
        held: set[int] = set()  # lines claimed here and not yet answered
        pacer = self._pacer(batch.model_group)
        try:
            principal = self.gw.keys.principal_for(batch.owner)
            last_look = time.monotonic()
            status = batch.status
            while status == "in_progress":
                await self._slots.acquire()
                self._slots.release()
                free = max(self._free_slots(), 1)
                claimed = await self.store.claim_batch_lines(batch.id, self.worker, self.settings.lease_s, free)
                if not claimed:
                    if running:
                        await asyncio.wait(running, timeout=self.settings.poll_s)
                    if not running:
                        await writer.close()
                        writer = AnswerWriter(self.store, batch.id)
                    states = await self.store.batch_line_states(batch.id)
                    if not states.get("pending") and not states.get("leased") and not running:
                        now = int(time.time())
                        await self.store.update_batch(
                            batch.id, when=("in_progress",), status="finalizing", finalizing_at=now
                        )
                        break
                    if not running:
                        await asyncio.sleep(self.settings.poll_s)  # others' lines, or leases to run out
                    status = await self._status(batch)
                    continue
                held.update(line.line_no for line in claimed)
                for line in claimed:
                    if status != "in_progress":
                        break
                    await self._slots.acquire()
                    await pacer.wait()
                    task = asyncio.get_running_loop().create_task(self._one(batch, line, principal, writer, held))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(lambda _: self._slots.release())
                if time.monotonic() - last_look >= LOOK_EVERY_S:
                    last_look = time.monotonic()
                    status = await self._status(batch)
            # cancelled or expired meanwhile: what is running finishes and is written
            if running:
                await asyncio.wait(running)
        finally:
            for task in running:
                task.cancel()
            with contextlib.suppress(Exception):
                await writer.close()
            if held:
                # stopping (or cancelled meanwhile): what was claimed and not answered goes back now, not
                # when its leases run out
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.store.release_batch_lines(batch.id, self.worker, sorted(held)))
            self._pumps.pop(batch.id, None)
            self.wake()

    def _free_slots(self) -> int:
        return int(getattr(self._slots, "_value", 1))

    async def _status(self, batch: BatchRecord) -> str:
        fresh = await self.store.get_batch(batch.id)
        return fresh.status if fresh is not None else "cancelled"

    async def _one(
        self, batch: BatchRecord, line: ClaimedLine, principal: Any, writer: AnswerWriter, held: set[int]
    ) -> None:
        try:
            result = await answer_line(
                self.gw, batch, line, principal, batch_rates=self.settings.gateway_at_batch_rates
            )
        except RetryLater as wait:
            if line.attempts >= self.settings.max_attempts * 4:
                face = faces.ANTHROPIC if batch.api == "anthropic" else faces.OPENAI
                from llmswitch.errors import RateLimitError

                exc = RateLimitError("rate limited on every try", status_code=429, provider="llmswitch")
                writer.add(error_outcome(line, face, exc, f"{batch.id}-{line.line_no}"))
                held.discard(line.line_no)
                return
            await asyncio.sleep(min(wait.wait_s, 30.0))
            await self.store.release_batch_lines(batch.id, self.worker, [line.line_no])
            held.discard(line.line_no)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must fail the line, never the batch
            log.exception("batch %s line %d", batch.id, line.line_no)
            face = faces.ANTHROPIC if batch.api == "anthropic" else faces.OPENAI
            result = error_outcome(line, face, exc, f"{batch.id}-{line.line_no}")
        writer.add(result)
        held.discard(line.line_no)
