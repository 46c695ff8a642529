"""What the gateway benchmarks share: the nginx upstream, a gateway process, virtual keys, wrk.

The upstream is ``../shared/bench/upstream.py`` (nginx answering chat completions as JSON, and as an
SSE stream) and the gateway's config is ``../shared/bench/config.yaml`` — the ones ``compare.py``
uses — moved to free loopback ports, so a benchmark never collides with another one already holding
:8081/:8082 on this shared machine. Everything started here is stopped by the context managers.
Not a benchmark itself; the scripts beside it import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "bench"
LLMSWITCH = REPO / ".venv" / "bin" / "llmswitch"
MASTER = "sk-bench-master-8f3a9c2e7d1b4a6f9e0c3b5d7a2f4e6c"
MESSAGES = [{"role": "user", "content": "Hello there, how are you?"}]
# settings the gateway would otherwise pick up from the caller's environment
_ENV_DROP = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "DATABASE_URL", "LLMSWITCH_CONFIG")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float = 20.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def post_json(url: str, body: dict, key: str = MASTER, timeout: float = 10.0) -> tuple[int, dict, dict]:
    """(status, headers, decoded body) of one POST; HTTP errors are answers too."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


@dataclass
class Upstream:
    """nginx playing the OpenAI-compatible upstream: ``json_url`` answers JSON, ``sse_url`` a stream."""

    work: Path
    json_port: int = 0
    sse_port: int = 0
    conf: Path = field(default_factory=Path)

    @property
    def json_base(self) -> str:
        return f"http://127.0.0.1:{self.json_port}/v1"

    @property
    def sse_base(self) -> str:
        return f"http://127.0.0.1:{self.sse_port}/v1"

    def config_yaml(self, name: str = "config", extra: str = "", general: str = "") -> Path:
        """``config.yaml`` of compare.py pointed at these ports, in a directory of its own (``name``; the
        gateway's SQLite store and journal go there): ``general`` is YAML added to its ``general_settings``
        (the last section of that file), ``extra`` YAML added after it."""
        text = (SHARED / "config.yaml").read_text()
        text = text.replace("127.0.0.1:8081", f"127.0.0.1:{self.json_port}")
        text = text.replace("127.0.0.1:8082", f"127.0.0.1:{self.sse_port}")
        if general:
            tail = text.partition("\ngeneral_settings:\n")[2]
            if not tail or not text.endswith("\n") or any(ln[:1] not in ("", " ") for ln in tail.splitlines()):
                raise RuntimeError("expected general_settings as the last section of config.yaml")
            text += general
        path = self.work / name / "config.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text + extra)
        return path


def shared_state(redis_host: str | None, database_url: str | None) -> tuple[str, str]:
    """``(extra, general)`` YAML for :meth:`Upstream.config_yaml`: limits in Redis at ``redis_host``
    (``host`` or ``host:port``) and keys/spend in PostgreSQL at ``database_url``, each when given."""
    extra = general = ""
    if redis_host:
        host, _, port = redis_host.partition(":")
        extra = f"router_settings:\n  redis_host: {host}\n  redis_port: {port or 6379}\n"
    if database_url:
        general = f"  database_url: {database_url}\n"
    return extra, general


def schema_of(database_url: str | None) -> str:
    """The ``schema`` query parameter of a PostgreSQL URL ("" when there is none)."""
    if not database_url:
        return ""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(database_url).query)
    return (query.get("schema") or [""])[0]


def own_schema(database_url: str | None) -> None:
    """Exit with a clear message unless a PostgreSQL URL names a schema of the run's own: a benchmark's
    tables in a database's ``public`` schema would stay behind among whatever else lives there."""
    if database_url and not schema_of(database_url):
        raise SystemExit(
            f"--database-url {database_url!r}: add ?schema=NAME, a schema of this run's own (dropped at the end)"
        )


def drop_schema(database_url: str | None) -> None:
    """Drop the schema a PostgreSQL URL names (``?schema=``), with everything in it."""
    schema = schema_of(database_url)
    if database_url and schema:
        base = database_url.split("?", 1)[0]
        subprocess.run(["psql", base, "-q", "-c", f"DROP SCHEMA IF EXISTS {schema} CASCADE"], capture_output=True)


@contextlib.contextmanager
def upstream() -> Iterator[Upstream]:
    work = Path(tempfile.mkdtemp(prefix="llmswitch-bench-"))
    up = Upstream(work, free_port(), free_port())
    out = subprocess.run(
        [sys.executable, str(SHARED / "upstream.py"), str(work / "nginx")], check=True, capture_output=True, text=True
    )
    up.conf = Path(out.stdout.strip())
    text = up.conf.read_text()
    text = text.replace("listen 127.0.0.1:8081;", f"listen 127.0.0.1:{up.json_port};")
    text = text.replace("listen 127.0.0.1:8082;", f"listen 127.0.0.1:{up.sse_port};")
    up.conf.write_text(text)
    subprocess.run(["nginx", "-c", str(up.conf)], check=True)
    finished = False
    try:
        wait_port(up.json_port)
        wait_port(up.sse_port)
        yield up
        finished = True
    finally:
        subprocess.run(["nginx", "-c", str(up.conf), "-s", "stop"], check=False, stderr=subprocess.DEVNULL)
        if finished:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"(kept {work} for its logs)", file=sys.stderr)


@dataclass
class Gateway:
    proc: subprocess.Popen
    base: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def new_key(self, **limits: object) -> str:
        """A virtual key from ``/key/generate`` carrying ``limits`` (rpm_limit, max_budget, ...)."""
        status, _, body = post_json(self.base + "/key/generate", dict(limits))
        if status != 200:
            raise RuntimeError(f"/key/generate answered {status}: {body}")
        return str(body["key"])

    def worker_pids(self) -> list[int]:
        """The processes serving requests: the workers `llmswitch serve --workers N` forked, or the gateway itself."""
        try:
            kids = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            kids = []
        # several workers are forked children of the serving process; one worker is that process
        workers = [int(k) for k in kids]
        return workers or [self.pid]


@contextlib.contextmanager
def gateway(
    config: Path,
    workers: int = 1,
    ready_model: str = "bench",
    src: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Gateway]:
    """``llmswitch serve`` on a free port, in the config's directory (its SQLite store and journal go there);
    ``src``: another copy of the package's ``src`` directory to run instead of the checkout's (PYTHONPATH
    comes before the venv's editable install); ``env``: variables set for it."""
    port = free_port()
    work = config.parent
    log = work / f"llmswitch-{port}.log"
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env.update(extra)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    if workers > 1 and "database_url:" not in config.read_text():
        # several workers opening a new SQLite store at once can race to switch it to WAL ("database is
        # locked", and the supervisor stops): create it in WAL mode first
        with contextlib.closing(sqlite3.connect(work / "llmswitch.db")) as db:
            db.execute("PRAGMA journal_mode=WAL")
    cmd = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=work, env=env)
    gw = Gateway(proc, f"http://127.0.0.1:{port}", log)
    try:
        end = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llmswitch serve exited with {proc.returncode}; see {log}")
            try:
                if (
                    post_json(gw.base + "/v1/chat/completions", {"model": ready_model, "messages": MESSAGES})[0] == 200
                    and len(gw.worker_pids()) == workers
                ):
                    break
            except OSError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"llmswitch serve did not answer in 60 s; see {log}")
            time.sleep(0.2)
        yield gw
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk_script(work: Path, model: str, stream: bool, key: str) -> Path:
    """A wrk Lua script posting one chat request for ``key``, as compare.py's."""
    body = json.dumps({"model": model, "stream": stream, "messages": MESSAGES})
    lua = (
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        f'wrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", dir=work, delete=False) as f:
        f.write(lua)
    return Path(f.name)


def wrk(url: str, script: Path, conns: int, seconds: float, threads: int = 1) -> dict:
    """One wrk run: requests/s, p50/p99 latency (ms), requests done, non-2xx responses."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    lat = {p: float(v) * unit[u] for p, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rps is None or done is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": lat.get("50"),
        "p99_ms": lat.get("99"),
        "requests": int(done.group(1)),
        "non2xx": int(bad.group(1)) if bad else 0,
    }


def rss_mb(pid: int) -> float:
    """VmRSS of a process, in MB (10^6 bytes)."""
    text = Path(f"/proc/{pid}/status").read_text()
    kb = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1))  # type: ignore[union-attr]
    return kb * 1024 / 1e6


def machine() -> str:
    """CPUs, their model and the load average, to print beside every figure."""
    model = ""
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    return f"{os.cpu_count()} cpus ({model}), load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
