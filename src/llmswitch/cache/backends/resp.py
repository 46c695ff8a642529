"""The cache's lean Redis client: it lives in :mod:`llmswitch._resp`, shared with the Redis limits backend."""

from __future__ import annotations

from llmswitch._resp import MAX_BUFFERED, LeanRedis, RespError, encode_command, lean_url, parse_reply

__all__ = ["MAX_BUFFERED", "LeanRedis", "RespError", "encode_command", "lean_url", "parse_reply"]
