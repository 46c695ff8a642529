"""llmswitch._http1_proxy and the client through forward proxies, over real loopback sockets.

:class:`ForwardProxy` is a proxy written here: CONNECT tunnels (piping bytes to the origin) and
absolute-form requests (forwarded to the origin in origin form, answers relayed), recording every head it
was sent. Origins are :class:`test_transport.Wire` servers, plain or TLS with a CA made in the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvloop

from llmswitch import _http1_proxy, transport
from llmswitch.errors import APIConnectionError
from llmswitch.network import Network
from test_transport import Request, Run, ServerConn, Wire, answer_each, call, response
from tls_ca import TestCA

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    return uvloop.run if request.param == "uvloop" else asyncio.run


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def _head(raw: bytes) -> Request:
    line, *rest = raw.decode("latin-1").split("\r\n")
    headers = {}
    for h in rest:
        if h:
            name, _, value = h.partition(":")
            headers[name.strip().lower()] = value.strip()
    return Request(line, headers, raw, b"")


class ForwardProxy:
    """A forward proxy on 127.0.0.1. ``credentials`` ("user:pass"): demand them (407 otherwise);
    ``refuse``: CONNECT targets answered with 403."""

    def __init__(self, *, credentials: str | None = None, refuse: tuple[str, ...] = ()) -> None:
        self.credentials = credentials
        self.refuse = refuse
        self.seen: list[Request] = []
        self.accepts = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        auth = f"{self.credentials}@" if self.credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def _authorized(self, head: Request) -> bool:
        if self.credentials is None:
            return True
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        return head.headers.get("proxy-authorization") == expected

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepts += 1
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                try:
                    head = _head(await reader.readuntil(b"\r\n\r\n"))
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.seen.append(head)
                method, target, _ = head.line.split(" ")
                if not self._authorized(head):
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
                        b"Content-Length: 0\r\n\r\n"
                    )
                    continue
                if method == "CONNECT":
                    await self._tunnel(target, reader, writer)
                    return
                parts = urlsplit(target)
                assert parts.scheme == "http" and parts.hostname, head.line
                body = await reader.readexactly(int(head.headers.get("content-length", "0")))
                if upstream is None:
                    upstream = await asyncio.open_connection(parts.hostname, parts.port or 80)
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                lines = [f"{method} {path} HTTP/1.1"]
                lines += [line for line in head.raw.decode("latin-1").split("\r\n")[1:] if line]
                forwarded = [h for h in lines if not h.lower().startswith("proxy-authorization:")]
                upstream[1].write(("\r\n".join(forwarded) + "\r\n\r\n").encode("latin-1") + body)
                answer = await upstream[0].readuntil(b"\r\n\r\n")
                size = int(_head(answer).headers.get("content-length", "0"))
                writer.write(answer + await upstream[0].readexactly(size))
        finally:
            if upstream is not None:
                upstream[1].close()
            writer.close()

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if target in self.refuse:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        origin_reader, origin_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(reader, origin_writer), pipe(origin_reader, writer))
        finally:
            origin_writer.close()

    def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._track, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


# ---------------------------------------------------------------- a CA made here


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("proxy-ca"))


@pytest.fixture(scope="module")
def localhost_only(ca: TestCA) -> Path:
    """A server certificate naming ``localhost`` only: a client that checked it against the proxy's
    address (127.0.0.1) would refuse it."""
    return ca.issue("localhost.pem", dns=("localhost",))


@pytest.fixture
def trust_ca(ca: TestCA) -> Iterator[None]:
    transport.configure_tls(ssl_verify=str(ca.pem))
    try:
        yield
    finally:
        transport.configure_tls()


class SNI:
    """A server context that records the names clients asked for."""

    def __init__(self, ca: TestCA, leaf: Path) -> None:
        self.names: list[str | None] = []
        self.context = ca.server_context(leaf)
        self.context.sni_callback = lambda _sock, name, _ctx: self.names.append(name)


# ---------------------------------------------------------------- https through a CONNECT tunnel


def test_https_goes_through_a_connect_tunnel_with_tls_to_the_origin(
    run: Run, ca: TestCA, localhost_only: Path, trust_ca: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sni = SNI(ca, localhost_only)
    seen: list[Request] = []

    async def origin(conn: ServerConn) -> None:
        while (req := await conn.request()) is not None:
            seen.append(req)
            conn.write(response(json.dumps({"n": len(seen)}).encode()))

    async def main() -> None:
        async with Wire(origin, ssl_context=sni.context) as wire, ForwardProxy(credentials="us er:p@ss:w") as proxy:
            monkeypatch.setenv("HTTPS_PROXY", f"http://us%20er:p%40ss%3Aw@127.0.0.1:{proxy.port}")
            await transport.close_session()  # the environment is read when a pool starts
            for n in (1, 2):
                raw = await transport.send(call(wire.url("/v1/chat?x=1")), timeout=5)
                assert json.loads(raw.body) == {"n": n}
            connect = proxy.seen[0]
            assert [h.line for h in proxy.seen] == [f"CONNECT localhost:{wire.port} HTTP/1.1"]
            assert connect.headers["host"] == f"localhost:{wire.port}"
            assert connect.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"us er:p@ss:w").decode()
            assert proxy.accepts == 1 and wire.accepts == 1  # one tunnel, kept alive
            assert [r.line for r in seen] == ["POST /v1/chat?x=1 HTTP/1.1"] * 2
            assert seen[0].headers["host"] == f"localhost:{wire.port}"
            assert "proxy-authorization" not in seen[0].headers  # the credentials are the proxy's alone
            assert sni.names == ["localhost"]

    run(main())


def test_the_origin_certificate_is_still_verified_through_the_tunnel(
    run: Run, ca: TestCA, localhost_only: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        async with Wire(answer_each, ssl_context=ca.server_context(localhost_only)) as wire, ForwardProxy() as proxy:
            monkeypatch.setenv("https_proxy", proxy.url)
            await transport.close_session()
            with pytest.raises(APIConnectionError, match="SSLCertVerificationError"):
                await transport.send(call(wire.url()), timeout=5)
            assert proxy.seen[0].line.startswith("CONNECT localhost:")

    run(main())


@pytest.mark.parametrize(
    ("proxy_credentials", "url_credentials", "message"),
    [
        ("u:p", None, r"the proxy http://127\.0\.0\.1:\d+ requires credentials \(user:password@ in its URL\): 407"),
        ("u:p", "u:wrong", r"the proxy http://127\.0\.0\.1:\d+ rejected the credentials in its URL: 407"),
    ],
)
def test_a_proxy_that_wants_credentials_is_a_clear_error(
    run: Run, monkeypatch: pytest.MonkeyPatch, proxy_credentials: str, url_credentials: str | None, message: str
) -> None:
    async def main() -> None:
        async with ForwardProxy(credentials=proxy_credentials) as proxy:
            auth = f"{url_credentials}@" if url_credentials else ""
            monkeypatch.setenv("HTTPS_PROXY", f"http://{auth}127.0.0.1:{proxy.port}")
            await transport.close_session()
            with pytest.raises(APIConnectionError, match=message) as caught:
                await transport.send(call("https://api.example.test/v1/x"), timeout=5, provider="acme")
            assert "wrong" not in str(caught.value)  # never the password
            # plain http through the proxy: the 407 comes as the answer to the request itself
            monkeypatch.setenv("HTTP_PROXY", f"http://{auth}127.0.0.1:{proxy.port}")
            await transport.close_session()
            with pytest.raises(APIConnectionError, match=message):
                await transport.send(call("http://api.example.test/v1/x"), timeout=5, provider="acme")

    run(main())


def test_a_refused_connect_is_a_clear_error(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with ForwardProxy(refuse=("blocked.example.test:443",)) as proxy:
            monkeypatch.setenv("ALL_PROXY", proxy.url)
            await transport.close_session()
            with pytest.raises(
                APIConnectionError,
                match=r"acme: connection to blocked\.example\.test failed: ProxyError: the proxy http://127\.0\.0\.1:\d+ "
                r"refused CONNECT blocked\.example\.test:443: 403 Forbidden",
            ):
                await transport.send(call("https://blocked.example.test/v1"), timeout=5, provider="acme")

    run(main())


@pytest.mark.parametrize("url", ["socks5://127.0.0.1:1080", "https://127.0.0.1:3129"])
def test_a_proxy_this_client_cannot_use_is_an_error_not_a_direct_connection(
    run: Run, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    async def main() -> None:
        async with Wire(answer_each) as wire:
            monkeypatch.setenv("all_proxy", url)
            await transport.close_session()
            with pytest.raises(APIConnectionError, match="only http:// proxies are"):
                await transport.send(call(wire.url()), timeout=5)
            assert wire.accepts == 0

    run(main())


# ---------------------------------------------------------------- plain http: absolute form


def test_http_goes_to_the_proxy_in_absolute_form(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with Wire(answer_each) as wire, ForwardProxy(credentials="u:p") as proxy:
            monkeypatch.setenv("http_proxy", f"127.0.0.1:{proxy.port}".replace("127", "u:p@127"))  # no scheme
            await transport.close_session()
            for n in (1, 2):
                raw = await transport.send(call(wire.url("/v1/x?y=1")), timeout=5)
                assert json.loads(raw.body)["n"] == n and json.loads(raw.body)["line"] == "POST /v1/x?y=1 HTTP/1.1"
            assert [h.line for h in proxy.seen] == [f"POST http://127.0.0.1:{wire.port}/v1/x?y=1 HTTP/1.1"] * 2
            assert proxy.seen[0].headers["host"] == f"127.0.0.1:{wire.port}"
            assert proxy.seen[0].headers["proxy-authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
            assert proxy.accepts == 1

    run(main())


# ---------------------------------------------------------------- no_proxy and per-deployment settings


def test_no_proxy_hosts_go_direct(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with Wire(answer_each) as wire, ForwardProxy() as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            monkeypatch.setenv("NO_PROXY", "internal.example, 127.0.0.0/8")
            await transport.close_session()
            assert (await transport.send(call(wire.url()), timeout=5)).status == 200
            assert proxy.seen == [] and wire.accepts == 1

    run(main())


def test_a_deployment_proxy_wins_over_the_environment_and_routes_do_not_share_connections(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        async with Wire(answer_each) as wire, ForwardProxy() as env_proxy, ForwardProxy() as own:
            monkeypatch.setenv("HTTP_PROXY", env_proxy.url)
            await transport.close_session()
            url = wire.url()
            await transport.send(call(url), timeout=5)
            await transport.send(call(url)._replace(network=Network(outbound_proxy=own.url)), timeout=5)
            await transport.send(call(url)._replace(network=Network(outbound_proxy=False)), timeout=5)
            await transport.send(call(url)._replace(network=Network(outbound_proxy=False)), timeout=5)
            assert len(env_proxy.seen) == 1 and len(own.seen) == 1
            # the direct requests shared one connection of their own; each proxy forwarded on its own
            assert wire.accepts == 3

    run(main())


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("*", "api.openai.com", 443, True),
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        (".example.com", "example.com", 443, True),
        (".example.com", "a.b.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        ("example.com", "example.com.evil", 443, False),
        ("EXAMPLE.com", "Api.Example.COM.", 443, True),
        (" a.test ,, b.test ", "b.test", 80, True),
        ("a.test b.test", "b.test", 80, True),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("10.0.0.0/8", "ten.example", 443, False),
        ("192.168.1.5", "192.168.1.5", 8080, True),
        ("::1", "::1", 443, True),
        ("fd00::/8", "fd12::5", 443, True),
        ("fd00::/8", "10.0.0.1", 443, False),
        ("[::1]:8080", "::1", 8080, True),
        ("[::1]:8080", "::1", 8081, False),
        ("localhost:8443", "localhost", 8443, True),
        ("localhost:8443", "localhost", 443, False),
        ("10.0.0.1:80", "10.0.0.1", 80, True),
        ("10.0.0.1:80", "10.0.0.1", 443, False),
        ("", "example.com", 443, False),
        ("*.example.com", "api.example.com", 443, False),  # curl takes no wildcard patterns but "*" alone
    ],
)
def test_no_proxy_matches_as_curl_does(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    everything, rules = _http1_proxy.parse_no_proxy(no_proxy)
    assert _http1_proxy.bypasses(host, port, everything, rules) is bypass


@pytest.mark.parametrize(
    ("env", "scheme", "proxy"),
    [
        ({"https_proxy": "http://a:1", "HTTPS_PROXY": "http://b:2"}, "https", "http://a:1"),
        ({"HTTPS_PROXY": "http://b:2"}, "https", "http://b:2"),
        ({"HTTPS_PROXY": "http://b:2"}, "http", None),
        ({"http_proxy": "http://c:3"}, "http", "http://c:3"),
        ({"ALL_PROXY": "http://d:4"}, "http", "http://d:4"),
        ({"all_proxy": "http://d:4", "https_proxy": "http://e:5"}, "https", "http://e:5"),
        ({"https_proxy": "proxy.corp:3128"}, "https", "http://proxy.corp:3128"),
        ({"https_proxy": "http://proxy.corp"}, "https", "http://proxy.corp:80"),
        ({"https_proxy": "http://a:1", "no_proxy": "api.test"}, "https", None),
        ({"https_proxy": "http://a:1", "NO_PROXY": "other.test"}, "https", "http://a:1"),
    ],
)
def test_the_proxy_environment_is_read_as_curl_reads_it(env: dict[str, str], scheme: str, proxy: str | None) -> None:
    found = _http1_proxy.ProxyEnvironment(env).proxy_for(scheme, "api.test", 443)
    assert (found.url if found else None) == proxy


def test_a_bad_deployment_proxy_is_a_config_error() -> None:
    from llmswitch.errors import ConfigError
    from llmswitch.network import network_from

    with pytest.raises(ConfigError, match=r"m: outbound_proxy: .*only http:// proxies are"):
        network_from({"outbound_proxy": "socks5://x:1"}, "m")
    with pytest.raises(ConfigError, match=r"m: outbound_proxy must be a proxy URL or false"):
        network_from({"outbound_proxy": 3128}, "m")
    assert network_from({"outbound_proxy": False}, "m") == Network(outbound_proxy=False)
    assert network_from({"ssl_verify": "False"}, "m") == Network(ssl_verify=False)


# ---------------------------------------------------------------- through the router, from litellm_params


def test_a_deployment_outbound_proxy_from_litellm_params_carries_its_calls(run: Run) -> None:
    import llmswitch
    from llmswitch.testing import FakeUpstream, Reply

    async def main() -> None:
        async with FakeUpstream() as up, ForwardProxy() as proxy:
            up.script(Reply(text="via proxy"), Reply(text="direct"))
            row = {"model": "openai/gpt-4o", "api_base": up.openai_base, "api_key": "sk-up"}
            router = llmswitch.Router(
                model_list=[
                    {"model_name": "proxied", "litellm_params": {**row, "outbound_proxy": proxy.url}},
                    {"model_name": "direct", "litellm_params": row},
                ]
            )
            messages = [{"role": "user", "content": "Hi"}]
            first = await router.acompletion(model="proxied", messages=messages)
            second = await router.acompletion(model="direct", messages=messages)
            assert first.choices[0].message.content == "via proxy"
            assert second.choices[0].message.content == "direct"
            assert [h.line for h in proxy.seen] == [f"POST {up.openai_base}/chat/completions HTTP/1.1"]
            assert proxy.seen[0].headers["authorization"] == "Bearer sk-up"  # the body went out unchanged

    run(main())


def test_the_sdk_takes_outbound_proxy_as_a_keyword(run: Run) -> None:
    import llmswitch
    from llmswitch.testing import FakeUpstream, Reply

    async def main() -> None:
        async with FakeUpstream() as up, ForwardProxy() as proxy:
            up.script(Reply(text="hello"))
            r = await llmswitch.acompletion(
                model="openai/gpt-4o",
                messages=[{"role": "user", "content": "Hi"}],
                api_base=up.openai_base,
                api_key="sk-up",
                outbound_proxy=proxy.url,
            )
            assert r.choices[0].message.content == "hello"
            assert [h.line for h in proxy.seen] == [f"POST {up.openai_base}/chat/completions HTTP/1.1"]
            assert b"outbound_proxy" not in up.requests[0].body  # a client setting, not a request field

    run(main())


def test_a_tunnel_opened_with_one_deployments_credentials_is_not_lent_to_another(
    run: Run, ca: TestCA, localhost_only: Path, trust_ca: None
) -> None:
    async def main() -> None:
        async with (
            Wire(answer_each, ssl_context=ca.server_context(localhost_only)) as wire,
            ForwardProxy(credentials="team-a:secret") as proxy,
        ):
            right = Network(outbound_proxy=f"http://team-a:secret@127.0.0.1:{proxy.port}")
            wrong = Network(outbound_proxy=f"http://team-b:guess@127.0.0.1:{proxy.port}")
            assert (await transport.send(call(wire.url())._replace(network=right), timeout=5)).status == 200
            with pytest.raises(APIConnectionError, match="rejected the credentials in its URL: 407"):
                await transport.send(call(wire.url())._replace(network=wrong), timeout=5)
            assert (await transport.send(call(wire.url())._replace(network=right), timeout=5)).status == 200
            assert wire.accepts == 1 and proxy.accepts == 2

    run(main())
