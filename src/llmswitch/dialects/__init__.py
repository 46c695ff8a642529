"""Wire formats, one module per dialect: pure functions over dicts and bytes, no I/O, no clocks.

Every dialect module offers the same names, so any of them reads like the others.

Client side (llmswitch calling a provider that speaks this dialect):
    encode_request(req: ir.Request, *, model: str, ...) -> dict          body to send
    decode_response(body: dict) -> ir.Response
    StreamDecoder(provider=..., model=...)  .feed(bytes) -> [ir.StreamEvent], .close(), .meta
    decode_error(status, body, headers, *, provider, model) -> APIStatusError

Server side (a client calling llmswitch in this dialect: the gateway, the fake upstream):
    decode_request(body: dict) -> ir.Request                             raises BadRequestError naming the field
    encode_response(resp: ir.Response) -> dict
    StreamEncoder(meta: ir.StreamMeta, *, include_usage: bool)  .encode(ev) -> bytes, .close() -> bytes
    encode_error(exc: BaseException) -> (status, body dict)

Internal helpers keep the same names across modules: ``map_messages_in/out``, ``map_usage_in/out``,
``_FINISH_REASON_MAP``.
"""
