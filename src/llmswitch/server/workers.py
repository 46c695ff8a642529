"""The gateway's processes: the listening socket, and the supervisor of forked workers.

``llmswitch serve --workers N`` (:func:`llmswitch.server.serve.run`) binds the address here and hands it
to a :class:`Supervisor`, which forks the workers, forwards SIGTERM/SIGINT to them, replaces one that
dies, and gives up when they keep failing as they start. Each worker listens on its own SO_REUSEPORT
socket of the same address (where SO_REUSEPORT exists) and runs what ``serve`` says.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from llmswitch.server.h1limits import ServerLimits
    from llmswitch.server.tls import TLSFiles

log = logging.getLogger("llmswitch.server")


def listen(host: str, port: int, backlog: int = 2048, *, reuse_port: bool = False) -> socket.socket:
    """The listening socket (SO_REUSEADDR); a clear error and exit 1 when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog, reuse_port=reuse_port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        raise SystemExit(1) from exc


def reserve(host: str, port: int) -> socket.socket:
    """The address bound with SO_REUSEPORT but not listening: it fails early (exit 1) when the address is
    taken and keeps it for the workers' own listening sockets, while taking no connections itself."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        raise SystemExit(1) from exc
    return sock


class Edge:
    """The server's limits and TLS files, handed to each worker (the TLS context is made in the worker)."""

    __slots__ = ("limits", "tls")

    def __init__(self, limits: ServerLimits | None = None, tls: TLSFiles | None = None) -> None:
        self.limits = limits
        self.tls = tls


class Supervisor:
    """Runs ``count`` forked workers on one address: forwards SIGTERM/SIGINT to them, replaces one
    that dies, and stops (exit 1) when workers keep dying as they start (``FAST_FAILURES`` in a row, each
    within ``FAST_SECONDS`` of its start or failing its startup)."""

    FAST_SECONDS = 1.0
    FAST_FAILURES = 3

    def __init__(
        self,
        sock: socket.socket,
        count: int,
        graceful_seconds: float,
        own_socket: tuple[str, int] | None = None,
        *,
        serve: Callable[[socket.socket, float, Edge], None],
    ) -> None:
        self.sock = sock
        self.serve = serve  # what a worker runs on its socket (serve.py's: build the gateway, serve it)
        # (host, port): each worker listens on its own SO_REUSEPORT socket; None: they share ``sock``
        self.own_socket = own_socket
        self.count = count
        self.graceful_seconds = graceful_seconds
        self.children: dict[int, float] = {}  # pid -> when it started
        self.stopping = False
        self.edge = Edge()
        self._pid = os.getpid()

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for _ in range(self.count):
                if not self.stopping:
                    self._spawn()
            code = self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if code:
            raise SystemExit(code)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True
        self._tell_children(signum)

    def _tell_children(self, signum: int) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def _watch(self) -> int:
        fast_failures = 0
        deadline: float | None = None
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                if self.stopping:
                    if deadline is None:
                        deadline = time.monotonic() + self.graceful_seconds + 5
                    elif time.monotonic() > deadline:
                        log.error("workers did not stop in time: killing %s", sorted(self.children))
                        self._tell_children(signal.SIGKILL)
                        deadline = float("inf")
                time.sleep(0.05)
                continue
            began = self.children.pop(pid, None)
            if began is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == STARTUP_FAILED or time.monotonic() - began < self.FAST_SECONDS:
                fast_failures += 1
            else:
                fast_failures = 0
            if fast_failures >= self.FAST_FAILURES:
                log.error("workers keep failing as they start (the last, %d, exited with %d): stopping", pid, code)
                self.stopping = True
                self._tell_children(signal.SIGTERM)
                self._wait_all(self.graceful_seconds + 5)
                return 1
            log.warning("worker %d exited with %d: starting another", pid, code)
            self._spawn()
        return 0

    def _wait_all(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while self.children and time.monotonic() < end:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                self.children.pop(pid, None)
            else:
                time.sleep(0.05)
        self._tell_children(signal.SIGKILL)

    def _spawn(self) -> None:
        # SIGTERM/SIGINT are held from before the fork until each side has its handlers: a stop that comes
        # meanwhile reaches the parent's handler once the new pid is among the children (so it is told
        # too), and in the child it ends the worker at once, instead of running the parent's handler
        # there (which told its siblings and left the new worker serving)
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            if self.stopping:
                return
            pid = os.fork()
            if pid == 0:
                self._child()  # never returns
            self.children[pid] = time.monotonic()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def _child(self) -> NoReturn:
        code = 1
        try:
            for sig in _STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            code = self._worker()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        except BaseException:
            log.exception("worker %d failed", os.getpid())
        finally:
            logging.shutdown()
            os._exit(code)

    def _worker(self) -> int:
        """In the forked child: serve its own socket (or the inherited one), SIGTERM/SIGINT handled by the server (until it
        has installed its handlers, either ends the worker at once)."""
        self.children = {}
        _die_with_parent(self._pid)
        sock = self.sock
        if self.own_socket is not None:
            sock.close()
            sock = listen(*self.own_socket, reuse_port=True)
        self.serve(sock, self.graceful_seconds, self.edge)
        return 0


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STARTUP_FAILED = 3  # h1serve.STARTUP_FAILED, without importing the server before forking


def _die_with_parent(parent: int) -> None:
    """SIGTERM this worker when the supervisor dies (even by SIGKILL), so no orphan keeps the port."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before prctl
        os.kill(os.getpid(), signal.SIGTERM)
