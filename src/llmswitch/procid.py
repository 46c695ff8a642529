"""This process's identity: a random prefix that makes ids unique across processes without a UUID each,
and its own random number generator.

Request ids (spend records' keys) and limiter lease ids are ``PREFIX`` plus a counter. A prefix made
at import would be shared by every child of a pre-forking server that imported llmswitch (or built the
whole gateway) before ``fork()`` -- ``gunicorn --preload``, ``multiprocessing``, our own ``--workers``
supervisor -- and their ids would collide: ``ON CONFLICT DO NOTHING`` would drop one worker's spend
records as another's, and one worker's lease would overwrite another's. So the prefix is renewed in
every forked child, before any Python code of the child runs.

Read it as ``procid.PREFIX`` at the moment an id is made (never ``from llmswitch.procid import
PREFIX``, which keeps the parent's value): one attribute lookup, nothing per request beyond it.

``RNG`` is what llmswitch draws its random numbers from (retry jitter, trace and span ids): a generator
of its own, so that llmswitch neither reads nor moves the global ``random`` state an application may seed
(nor a thread of llmswitch's the state another thread's code is drawing from), reseeded in every forked
child like the prefix, so two workers never draw the same jitter or ids.
"""

from __future__ import annotations

import os
import random


def _new_prefix() -> str:
    return os.urandom(6).hex()


PREFIX: str = _new_prefix()
RNG = random.Random()


def _renew_after_fork() -> None:
    global PREFIX
    PREFIX = _new_prefix()
    RNG.seed()


os.register_at_fork(after_in_child=_renew_after_fork)
