"""Gateways for the money tests: one on a thread with its own journal directory, and the groups they serve.

``served(config, journal)`` runs a gateway whose spend journal is ``journal``; ``embed_config`` is the priced
chat groups of :mod:`multi_harness` plus an embeddings group, all on the fake upstream. :class:`TcpProxy`
stands between the gateway and Redis or PostgreSQL, to hold their replies back or cut them off.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from gateway_harness import ServedGateway
from multi_harness import priced_config

from llmswitch.testing import FakeUpstream

EMBED_GROUP = "m-embed"
EMBED_MODEL = "text-embedding-3-small"


@contextlib.contextmanager
def served(config: str, journal: Path) -> Iterator[ServedGateway]:
    """A gateway on a thread, journaling spend in ``journal`` (the variable is read while it is built)."""
    with journal_env(journal):
        gateway = ServedGateway(config)
    with gateway:
        yield gateway


@contextlib.contextmanager
def journal_env(journal: Path) -> Iterator[None]:
    old = os.environ.get("LLMSWITCH_JOURNAL_DIR")
    os.environ["LLMSWITCH_JOURNAL_DIR"] = str(journal)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LLMSWITCH_JOURNAL_DIR", None)
        else:
            os.environ["LLMSWITCH_JOURNAL_DIR"] = old


def embed_config(up: FakeUpstream, store: str, *, redis: bool = False) -> str:
    """The priced chat groups and an embeddings group on the fake upstream's OpenAI route."""
    row = f"""  - model_name: {EMBED_GROUP}
    litellm_params:
      model: openai/{EMBED_MODEL}
      api_base: "{up.openai_base}"
      api_key: sk-up-openai-2c91
"""
    return priced_config(up, store, redis=redis).replace("model_list:\n", "model_list:\n" + row, 1)


class TcpProxy:
    """A TCP proxy on a free loopback port to ``target``. While ``hold()`` is on, the target's replies
    wait in the proxy until ``release()``; ``cut()`` closes every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._cond = threading.Condition()
        self._holding = False
        self.held = 0  # replies that arrived while holding
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        with self._cond:
            self._holding = True

    def release(self) -> None:
        with self._cond:
            self._holding = False
            self._cond.notify_all()

    def cut(self) -> None:
        self.release()
        for s in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    close = cut

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while data := src.recv(65536):
                if replies:
                    with self._cond:
                        if self._holding:
                            self.held += 1
                            while self._holding:
                                self._cond.wait()
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
