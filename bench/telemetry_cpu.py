"""Gateway CPU per request with tracing off, and on exporting every span to a local OTLP/HTTP collector.

    .venv/bin/python bench/telemetry_cpu.py [--seconds 8] [--conns 16] [--rounds 3] [--json FILE]

The gateway benchmark's setup (nginx upstream, ``../shared/bench/config.yaml`` on free ports, ``llmswitch
serve``, one worker, the master key), in variants: ``off`` as the config is, ``otel`` with
``litellm_settings.callbacks: ["otel"]`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` at a collector on loopback (a
thread of this process that takes each OTLP/HTTP POST and answers 200; its CPU is not the gateway's), and
``otel+webhook`` with the generic webhook callback too (a batch POST of standard logging payloads to the
same loopback server). For each, wrk drives non-streaming and streaming requests for ``--seconds`` at
``--conns`` connections, and the gateway process's CPU time (utime + stime, every thread: the exporter's
included) over the run, divided by the requests wrk completed, is its CPU per request. The variants take
turns for ``--rounds``; medians are printed, and the cost of each variant over ``off``.

A benchmark, not a test: the machine is shared and noisy; compare the figures of one run. About 2 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import MASTER, gateway, machine, upstream, wrk, wrk_script

VARIANTS = {
    "off": "",
    "otel": 'litellm_settings:\n  callbacks: ["otel"]\n',
    "otel+webhook": 'litellm_settings:\n  callbacks: ["otel", "generic_api"]\n',
}


@contextlib.contextmanager
def collector() -> Iterator[tuple[str, list[int]]]:
    """A loopback server answering 200 to every POST (OTLP and webhook alike); counts the POSTs."""
    posts = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            posts[0] += 1
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", posts
    finally:
        server.shutdown()
        server.server_close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def micro(n: int = 20000) -> dict[str, float]:
    """In this process, no I/O: CPU µs per request of recording a request span and one attempt span (the
    request path), and of writing them as OTLP protobuf (on the event loop, off the request's own path),
    with our writer and, for comparison, with the SDK's ReadableSpan and the official encoder."""
    import time

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource

    from llmswitch import ir
    from llmswitch.router.attempts import Attempt
    from llmswitch.telemetry.traces import SpanRecord, Tracing
    from llmswitch.telemetry.traces_export import Converter
    from llmswitch.telemetry.traces_otlp import Encoder

    class Keep:
        name = "keep"

        def __init__(self) -> None:
            self.items: list[SpanRecord] = []

        def offer(self, item: SpanRecord) -> bool:
            self.items.append(item)
            return True

    keep = Keep()
    tracing = Tracing([keep], capture_content=False)  # type: ignore[list-item]
    usage = ir.Usage(input_tokens=9, output_tokens=9)
    a = Attempt(deployment="d0", group="bench", provider="openai", model="gpt-4o-mini", number=1, outcome="ok",
                elapsed=0.001, usage=usage, status=None)  # fmt: skip
    t0 = time.process_time()
    for _ in range(n):
        rs = tracing.start_request("chat", None, traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        rs.start_attempt("http://127.0.0.1:8081/v1/chat/completions")
        rs.attempt_done(a)
        rs.span.update_name("chat bench")
        rs.end(status=200, usage=usage, cost=1.1e-5, attributes={"gen_ai.request.model": "bench"})
    path = (time.process_time() - t0) / n * 1e6
    resource = Resource.create({"service.name": "llmswitch"})
    convert = Converter(resource)
    t0 = time.process_time()
    for i in range(0, len(keep.items), 64):
        encode_spans(convert(keep.items[i : i + 64])).SerializePartialToString()
    official = (time.process_time() - t0) / n * 1e6
    encoder = Encoder(dict(resource.attributes), "llmswitch", "0")
    t0 = time.process_time()
    for i in range(0, len(keep.items), 64):
        encoder.encode(keep.items[i : i + 64])
    ours = (time.process_time() - t0) / n * 1e6
    print(
        f"in-process: request path {path:.1f} µs/request; OTLP protobuf of its 2 spans: {ours:.1f} µs "
        f"(the official encoder from ReadableSpan: {official:.1f} µs)"
    )
    return {"request_path_us": path, "encode_us": ours, "official_encode_us": official}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(machine())
    in_process = micro()
    results: dict[str, dict[str, list[float]]] = {v: {"json": [], "stream": []} for v in VARIANTS}
    with upstream() as up, collector() as (url, posts):
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = url
        os.environ["GENERIC_LOGGER_ENDPOINT"] = url + "/logs"
        configs = {v: up.config_yaml(v.replace("+", "-"), extra=extra) for v, extra in VARIANTS.items()}
        for rnd in range(args.rounds):
            for variant, config in configs.items():
                with gateway(config) as gw:
                    for kind, model in (("json", "bench"), ("stream", "bench-stream")):
                        script = wrk_script(config.parent, model, kind == "stream", MASTER)
                        before = cpu_seconds(gw.pid)
                        run = wrk(gw.base + "/v1/chat/completions", script, args.conns, args.seconds)
                        used = cpu_seconds(gw.pid) - before
                        if run["non2xx"]:
                            raise RuntimeError(f"{variant}: {run['non2xx']} non-2xx answers; see {gw.log}")
                        us = used / run["requests"] * 1e6
                        results[variant][kind].append(us)
                        print(
                            f"round {rnd + 1} {variant:13} {kind:6} {run['rps']:8.0f} req/s  {us:7.1f} µs CPU/request"
                        )
        print(f"collector POSTs: {posts[0]}")
    print(f"\nmedians ({machine()})")
    base = {k: statistics.median(results["off"][k]) for k in ("json", "stream")}
    summary: dict[str, dict[str, float]] = {}
    for variant, kinds in results.items():
        row = {k: statistics.median(v) for k, v in kinds.items()}
        summary[variant] = row
        extra = "  ".join(f"{k} +{row[k] - base[k]:5.1f} µs" for k in row) if variant != "off" else ""
        print(f"{variant:13} json {row['json']:7.1f} µs  stream {row['stream']:7.1f} µs  {extra}")
    if args.json:
        out = {"machine": machine(), "in_process": in_process, "rounds": results, "medians": summary}
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
