"""CPU per request of the gateway's accounting: auth, limits, cost, spend journal, access log; and the shipper.

    .venv/bin/python bench/accounting_cpu.py                 # 5 rounds of 20,000 requests
    .venv/bin/python bench/accounting_cpu.py -n 5000 --rounds 3 --profile   # plus a cProfile of one round
    # another version of the code, e.g. the last commit's (the machine is shared: run them in turns)
    git archive HEAD src | tar -x -C /tmp/base && PYTHONPATH=/tmp/base/src .venv/bin/python bench/accounting_cpu.py

On uvloop, with the gateway benchmark's setup (``../shared/bench/config.yaml``, ``compare.py``):
a MemoryLimiter with a spend loader, an SQLite store and a spend journal (fsync "os") in a temporary
directory, one virtual key with ``rpm_limit`` 10,000,000 and ``max_budget`` 1e9. Each iteration does
what ``handle_chat`` and the app do around one non-streaming answer: authenticate the key, the price
hint, ``Accounting.admit``, ``Accounting.finish`` (cost, settle, journal append) with the upstream's
usage and a router ``Route``, and the access log record. Nothing in it awaits anything real, so the
timed loop never yields and the shipper does not run inside it.

Then the shipper moves the round's records to SQLite: its cost is the process CPU time (every thread,
user and kernel; the kernel's part, mostly the syncs of each commit, is shown apart) from the end of
the round until the store has them all, per record.

Reports the median and the best of the rounds: event-loop CPU µs per request, shipper CPU µs per record.

``--metrics both`` (the default) alternates rounds with the gateway's Prometheus metrics on and off
(``llmswitch.telemetry.metrics``): on, each request also opens and closes its metrics tally, counts its
end (``Accounting.finish``) and one upstream attempt through the router's ``on_attempt`` hook (an
``Attempt`` built as the router builds it when a hook is set), and the difference of the two medians is
what metrics cost per request. ``--metrics on`` / ``off`` runs one setting only.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from llmswitch import config as cfgmod
from llmswitch.dialects._json import loads
from llmswitch.limits import open_limiter
from llmswitch.router.attempts import Attempt, outcome_of
from llmswitch.router.outcomes import Route
from llmswitch.router.router import Router
from llmswitch.server import faces, fastpath, http
from llmswitch.server.accesslog import AccessLog
from llmswitch.server.accounting import Accounting, spend_loader_for
from llmswitch.server.auth import KeyCache, extract_key
from llmswitch.server.subjects import SubjectCache
from llmswitch.store import KeyRecord, open_store
from llmswitch.store.keys import generate_key
from llmswitch.telemetry.metrics import Metrics

# the gateway benchmark's config, in ../shared beside the checkout
CONFIG = str(Path(__file__).resolve().parents[2] / "shared" / "bench" / "config.yaml")
MASTER = "sk-bench-master-8f3a9c2e7d1b4a6f9e0c3b5d7a2f4e6c"
# what wrk sends, and what the benchmark's upstream answers
BODY = b'{"model": "bench", "stream": false, "messages": [{"role": "user", "content": "Hello there, how are you?"}]}'
ANSWER = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1730000000,"model":"gpt-4o-mini-2024-07-18",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?",'
    b'"refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,'
    b'"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":'
    b'{"reasoning_tokens":0}}}'
)
_ids = iter(range(1, 1 << 62))
_ship_sys: list[float] = []  # of the shipper's CPU time, the part spent in the kernel (syncs, writes)


def _request(key: str) -> http.Request:
    scope = {
        "method": "POST",
        "path": "/v1/chat/completions",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json")],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY}

    request = http.Request(scope, receive)
    request.body = BODY
    # as Gateway._http sets them
    spend_id = f"bench{next(_ids):012x}"
    request.state["request_id"] = spend_id
    request.state["spend_id"] = spend_id
    return request


async def _round(
    n: int,
    key: str,
    keys: KeyCache,
    acc: Accounting,
    router: Router,
    access: AccessLog,
    route: Route,
    metrics: Metrics | None = None,
) -> float:
    """CPU seconds of the event loop's thread for ``n`` requests' accounting (wall time varies with
    whatever else the machine runs; the thread's CPU time much less)."""
    requests = [_request(key) for _ in range(n)]
    face = faces.OPENAI
    req = face.decode_request(loads(BODY))
    model = req.model
    usage = fastpath.usage_of_body(ANSWER)  # the fast path's work, not accounting's: once
    acc.metrics = metrics
    hook = metrics.note_attempt if metrics is not None else None
    t = route.target
    t0 = time.thread_time()
    for request in requests:
        started = time.perf_counter()
        # handle_chat, before routing
        principal = keys.authenticate(extract_key(request))
        request.state["principal"] = principal
        request.state["model"] = model
        reservation = await acc.admit(principal, req, request, price_hint=acc.price_hint(router, model))
        # ... the router answered, and told its on_attempt hook (Outcomes._tell) when one is set
        if hook is not None:
            outcome, error, status = outcome_of(None)
            hook(
                Attempt(
                    deployment=t.id,
                    group=t.group,
                    provider=t.provider.name,
                    model=t.model,
                    number=1,
                    outcome=outcome,
                    elapsed=0.0004,
                    error=error,
                    status=status,
                    usage=usage,
                )
            )
        request.state["deployment"] = route.id
        request.state["usage"] = usage
        await acc.finish(
            request,
            reservation,
            status=200,
            route=route,
            usage=request.state.get("usage"),
            stream=False,
            started=started,
        )
        # Gateway._http's finally
        if metrics is not None:
            metrics.note_end(request.state)
        access.record(request, 200, time.perf_counter() - started)
    return time.thread_time() - t0


async def _ship(acc: Accounting, n: int) -> float:
    """Process CPU seconds until the shipper has stored everything journaled so far."""
    assert acc.shipper is not None
    c0 = os.times()
    await acc.shipper.drain()
    c1 = os.times()
    _ship_sys.append(c1.system - c0.system)
    return (c1.user + c1.system) - (c0.user + c0.system)


async def main(args: argparse.Namespace, devnull: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="llmswitch-bench-") as tmp:
        store = open_store(f"sqlite:///{tmp}/llmswitch.db")
        await store.open()
        await store.migrate()
        key = generate_key()
        await store.create_key(KeyRecord.for_key(key, rpm_limit=10_000_000, max_budget=1e9))
        limiter = open_limiter(env={}, spend_loader=spend_loader_for(store))
        acc = Accounting(limiter=limiter, store=store, journal_dir=str(Path(tmp) / "llmswitch.db.journal"), fsync="os")
        acc.subjects = SubjectCache(store)
        await acc.start()
        keys = KeyCache(store, MASTER)
        await keys.refresh()
        router = Router.from_config(cfgmod.load_config(CONFIG))
        route = Route(router.deployments("bench")[0], "bench", 1, "bench")
        access = AccessLog(stream=devnull)
        metrics = Metrics()
        settings = {"both": (metrics, None), "on": (metrics,), "off": (None,)}[args.metrics]
        # warm up: the budget is loaded from the store on the first admission, prices resolved once
        for m in settings:
            await _round(200, key, keys, acc, router, access, route, m)
        await _ship(acc, 200 * len(settings))

        loop_us: list[float] = []
        ship_us: list[float] = []
        by_setting: dict[bool, list[float]] = {True: [], False: []}
        for r in range(args.rounds * len(settings)):
            m = settings[r % len(settings)]
            profiler = cProfile.Profile() if args.profile and r == 0 else None
            if profiler is not None:
                profiler.enable()
            seconds = await _round(args.n, key, keys, acc, router, access, route, m)
            if profiler is not None:
                profiler.disable()
            cpu = await _ship(acc, args.n)
            loop_us.append(seconds / args.n * 1e6)
            ship_us.append(cpu / args.n * 1e6)
            by_setting[m is not None].append(loop_us[-1])
            print(
                f"round {r + 1} (metrics {'on' if m is not None else 'off'}): event loop {loop_us[-1]:6.1f} µs/request"
                f"   shipper {ship_us[-1]:6.1f} µs/record "
                f"(kernel {_ship_sys[-1] / args.n * 1e6:.1f})"
            )
            if profiler is not None:
                pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(args.top)
        assert acc.shipper is not None
        stats = acc.shipper.stats
        print(
            f"median (best): event loop {statistics.median(loop_us):.1f} ({min(loop_us):.1f}) µs/request, "
            f"shipper {statistics.median(ship_us):.1f} ({min(ship_us):.1f}) µs/record "
            f"({stats.shipped} shipped in {stats.batches} batches)"
        )
        if by_setting[True] and by_setting[False]:
            on, off = statistics.median(by_setting[True]), statistics.median(by_setting[False])
            print(f"metrics: event loop {on:.1f} µs/request on, {off:.1f} off (medians): {on - off:+.1f} µs/request")
        spent = await store.get_key(KeyRecord.for_key(key).token_hash)
        assert spent is not None and spent.spend > 0
        await acc.stop()
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=20_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile the first round")
    parser.add_argument("--top", type=int, default=30, help="functions shown by --profile")
    parser.add_argument("--metrics", choices=("both", "on", "off"), default="both", help="Prometheus metrics")
    # as configure_logging sets it: the access log writes its records at level info
    logging.getLogger("llmswitch").setLevel(logging.INFO)
    with open(os.devnull, "w") as devnull:
        uvloop.run(main(parser.parse_args(), devnull))
