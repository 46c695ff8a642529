"""Citations in every dialect, as one IR type (:class:`ir.Citation`), both directions, pure.

What each provider sends, and how it reads:

- OpenAI: ``message.annotations`` (and ``delta.annotations`` in streams), ``url_citation`` items with
  ``start_index`` / ``end_index`` into the message content -> one citation each, offsets kept.
- Anthropic: ``citations`` of a text block (``web_search_result_location``, ``char_location``,
  ``page_location``, ``content_block_location``, ``search_result_location``; ``citations_delta`` in
  streams) -> citations of that whole block; the block's own form kept in ``native``.
- Gemini: ``groundingMetadata`` (``groundingSupports`` -> ``groundingChunks``, offsets in UTF-8 bytes)
  and ``citationMetadata.citationSources`` -> a citation per supported span and source.

And how each client dialect is given them:

- OpenAI clients: a citation with a URL is a ``url_citation`` annotation (the only kind the schema
  allows) over its span of the message content; one without (a place in a document) goes, as its
  provider wrote it, to ``provider_specific_fields.citations`` (LiteLLM's place for them).
- Anthropic clients: Anthropic's own citations as they came; a web citation from elsewhere as a
  ``web_search_result_location`` whose ``encrypted_index`` is empty (it is no Anthropic index, and is
  never sent to Anthropic); text is split into blocks at the cited spans, as Anthropic does.
- Gemini clients: Gemini's metadata as it came; citations from elsewhere as ``groundingMetadata``
  (chunks by URL, supports by span), with the queries of Anthropic's web searches as ``webSearchQueries``.

    >>> c = openai_in([{"type": "url_citation", "url_citation": {"url": "https://a.example", "title": "A",
    ...     "start_index": 0, "end_index": 2}}])
    >>> [(text, [x.url for x in cites]) for text, cites in split_blocks(ir.TextPart("Hi there", citations=c))]
    [('Hi', ['https://a.example']), (' there', [])]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import msgspec

from llmswitch import ir

# Anthropic's citation kinds: only these go back to Anthropic
ANTHROPIC_TYPES = frozenset(
    ("char_location", "page_location", "content_block_location", "web_search_result_location", "search_result_location")
)
_TITLE_MAX = 512  # Anthropic's limit on a web citation's title


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


# ---------------------------------------------------------------- OpenAI


def openai_in(annotations: Any) -> list[ir.Citation]:
    """OpenAI ``annotations`` as citations (offsets into the message content, as OpenAI gives them)."""
    out: list[ir.Citation] = []
    for a in annotations if isinstance(annotations, list) else ():
        if not isinstance(a, dict):
            continue
        u = a.get("url_citation")
        if a.get("type") == "url_citation" and isinstance(u, dict):
            out.append(
                ir.Citation(
                    url=_str(u.get("url")),
                    title=_str(u.get("title")),
                    start=_int(u.get("start_index")),
                    end=_int(u.get("end_index")),
                    provider="openai",
                    native=a,
                )
            )
        else:
            out.append(ir.Citation(provider="openai", native=a))
    return out


def openai_out(citations: Iterable[tuple[int, int, ir.Citation]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(annotations, provider_specific_fields citations) for citations over spans ``[start, end)`` of the content.

    OpenAI's own annotations at their own offsets go back exactly as they came (the fast path relays them
    so; the full path must agree)."""
    annotations: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for start, end, c in citations:
        if c.provider == "openai" and c.native is not None and (c.url is None or (c.start, c.end) == (start, end)):
            annotations.append(c.native)
        elif c.url is not None:
            span = {"end_index": end, "start_index": start, "title": c.title or "", "url": c.url}
            annotations.append({"type": "url_citation", "url_citation": span})
        elif c.native is not None:
            others.append(c.native)
    return annotations, others


def message_spans(parts: list[ir.Part], *, refusals: bool = True) -> list[tuple[int, int, ir.Citation]]:
    """Every citation of a message's text parts, with its span in the text of all of them joined
    (``refusals``: whether a refusal is part of that text, as where a dialect shows it as text)."""
    out: list[tuple[int, int, ir.Citation]] = []
    offset = 0
    for p in parts:
        if not isinstance(p, ir.TextPart) or (p.refusal and not refusals):
            continue
        for c in p.citations or ():
            # offsets a provider gave are kept as given (an OpenAI annotation goes back unchanged)
            start, end = (c.start, c.end) if c.start is not None and c.end is not None else _span(c, len(p.text))
            out.append((offset + start, offset + end, c))
        offset += len(p.text)
    return out


def _span(c: ir.Citation, length: int) -> tuple[int, int]:
    if c.start is None and c.end is None:
        return 0, length
    start = min(max(c.start or 0, 0), length)
    end = length if c.end is None else min(max(c.end, start), length)
    return start, end


# ---------------------------------------------------------------- Anthropic


def anthropic_in(raw: Any) -> list[ir.Citation] | None:
    """A text block's ``citations`` as IR citations (each for the whole block)."""
    if not isinstance(raw, list) or not raw:
        return None
    return [anthropic_one(c) for c in raw if isinstance(c, dict)] or None


def anthropic_one(c: dict[str, Any]) -> ir.Citation:
    """One Anthropic citation. A web citation with no ``encrypted_index`` was made by us from another
    provider's (see :func:`anthropic_out`): it is not Anthropic's, and is never sent back to Anthropic."""
    kind = c.get("type")
    own = kind in ANTHROPIC_TYPES and (kind != "web_search_result_location" or bool(c.get("encrypted_index")))
    return ir.Citation(
        url=_str(c.get("url")),
        title=_str(c.get("title")) or _str(c.get("document_title")),
        cited_text=_str(c.get("cited_text")),
        provider="anthropic" if own else None,
        native=c,
    )


def anthropic_out(c: ir.Citation, span: str, *, to_anthropic: bool) -> dict[str, Any] | None:
    """A citation as Anthropic writes one, for a block whose text is ``span``; None when it has no such form.

    ``to_anthropic``: for a request to Anthropic, which takes back only the citations it made."""
    if c.provider == "anthropic" and c.native is not None:
        return c.native
    if to_anthropic:
        return None
    if c.native is not None and c.native.get("type") in ANTHROPIC_TYPES:
        return c.native  # ours, from an earlier turn: as it was handed out
    if c.url is None:
        return None
    title = c.title[:_TITLE_MAX] if c.title else None
    return {
        "type": "web_search_result_location",
        "cited_text": c.cited_text if c.cited_text is not None else span,
        "url": c.url,
        "title": title,
        "encrypted_index": "",
    }


def split_blocks(p: ir.TextPart) -> list[tuple[str, list[ir.Citation]]]:
    """A text part as Anthropic text blocks: cut where a cited span starts or ends, each piece with the
    citations that cover it (Anthropic cites whole blocks)."""
    if not p.citations:
        return [(p.text, [])]
    length = len(p.text)
    spans = [(*_span(c, length), c) for c in p.citations]
    cuts = sorted({0, length, *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    starts: list[int] = []
    blocks: list[tuple[str, list[ir.Citation]]] = []
    for a, b in itertools.pairwise(cuts):
        if a < b:
            starts.append(a)
            blocks.append((p.text[a:b], [c for s, e, c in spans if s <= a and b <= e and s < e]))
    if not blocks:
        return [(p.text, list(p.citations))]
    # a citation of an empty span (a marker between two characters) goes on the block after it
    for s, e, c in spans:
        if s == e:
            k = next((i for i, a in enumerate(starts) if a >= s), len(blocks) - 1)
            blocks[k][1].append(c)
    return blocks


# ---------------------------------------------------------------- Gemini


def gemini_in(meta: dict[str, Any] | None, texts: list[str]) -> list[list[ir.Citation]]:
    """Gemini's grounding and citation metadata as citations of a candidate's text parts (``texts``)."""
    out: list[list[ir.Citation]] = [[] for _ in texts]
    if not meta or not texts:
        return out
    joined = "".join(texts)
    encoded = joined.encode()
    bounds: list[int] = []
    total = 0
    for t in texts:
        total += len(t)
        bounds.append(total)

    def place(start_byte: Any, end_byte: Any, c: ir.Citation) -> None:
        start = _chars(encoded, _int(start_byte) or 0)
        end = _chars(encoded, _int(end_byte)) if _int(end_byte) is not None else len(joined)
        k = next((i for i, b in enumerate(bounds) if start < b), len(texts) - 1)
        base = bounds[k] - len(texts[k])
        s, e = max(start - base, 0), min(max(end, start) - base, len(texts[k]))
        out[k].append(msgspec.structs.replace(c, start=s, end=e, provider="gemini"))

    gm = meta.get("groundingMetadata")
    if isinstance(gm, dict):
        raw_chunks = gm.get("groundingChunks")
        chunks: list[Any] = raw_chunks if isinstance(raw_chunks, list) else []
        for support in gm.get("groundingSupports") or ():
            if not isinstance(support, dict):
                continue
            raw_seg = support.get("segment")
            seg: dict[str, Any] = raw_seg if isinstance(raw_seg, dict) else {}
            for i in support.get("groundingChunkIndices") or ():
                chunk = chunks[i] if isinstance(i, int) and 0 <= i < len(chunks) else None
                src = _chunk_source(chunk)
                if src is not None:
                    # a source without a URL (a retrieved document) is kept as Gemini described it
                    native = chunk if src[0] is None else None
                    cite = ir.Citation(url=src[0], title=src[1], cited_text=_str(seg.get("text")), native=native)
                    place(seg.get("startIndex"), seg.get("endIndex"), cite)
    cm = meta.get("citationMetadata")
    if isinstance(cm, dict):
        sources = cm.get("citationSources") or cm.get("citations") or ()  # AI Studio's name, Vertex's
        for src in sources if isinstance(sources, list) else ():
            if isinstance(src, dict) and isinstance(src.get("uri"), str):
                place(
                    src.get("startIndex"),
                    src.get("endIndex"),
                    ir.Citation(url=src["uri"], title=_str(src.get("title"))),
                )
    return out


def _chunk_source(chunk: Any) -> tuple[str | None, str | None] | None:
    if not isinstance(chunk, dict):
        return None
    for key in ("web", "retrievedContext", "maps"):
        src = chunk.get(key)
        if isinstance(src, dict):
            return _str(src.get("uri")), _str(src.get("title"))
    return None


def _chars(encoded: bytes, byte_offset: int | None) -> int:
    """A UTF-8 byte offset as a character offset."""
    if byte_offset is None:
        return len(encoded.decode(errors="ignore"))
    return len(encoded[: max(byte_offset, 0)].decode(errors="ignore"))


def gemini_out(text: str, spans: Iterable[tuple[int, int, ir.Citation]], queries: list[str]) -> dict[str, Any] | None:
    """``groundingMetadata`` for citations over spans of a candidate's text (``text``), skipping Gemini's own
    (its metadata goes back as it came)."""
    chunks: list[dict[str, Any]] = []
    by_url: dict[str, int] = {}
    supports: dict[tuple[int, int], list[int]] = {}
    for start, end, c in spans:
        if c.provider == "gemini" or c.url is None:
            continue
        i = by_url.get(c.url)
        if i is None:
            i = by_url[c.url] = len(chunks)
            chunks.append({"web": {"uri": c.url, "title": c.title or ""}})
        indices = supports.setdefault((start, end), [])
        if i not in indices:
            indices.append(i)
    if not chunks and not queries:
        return None
    out: dict[str, Any] = {}
    if queries:
        out["webSearchQueries"] = queries
    if chunks:
        out["groundingChunks"] = chunks
        out["groundingSupports"] = [
            {
                "segment": {
                    "startIndex": len(text[:s].encode()),
                    "endIndex": len(text[:e].encode()),
                    "text": text[s:e],
                },
                "groundingChunkIndices": idx,
            }
            for (s, e), idx in supports.items()
        ]
    return out


def search_queries(parts: Iterable[ir.Part]) -> list[str]:
    """The queries of Anthropic's web searches in an answer (its ``server_tool_use`` blocks)."""
    out = []
    for p in parts:
        if isinstance(p, ir.ProviderPart) and p.provider == "anthropic" and p.block.get("type") == "server_tool_use":
            query = (p.block.get("input") or {}).get("query") if p.block.get("name") == "web_search" else None
            if isinstance(query, str) and query:
                out.append(query)
    return out


def attach(parts: list[ir.Part], per_text: list[list[ir.Citation]]) -> None:
    """Give each text part of ``parts`` (in order) its citations from ``per_text``."""
    texts = [p for p in parts if isinstance(p, ir.TextPart)]
    for p, cites in zip(texts, per_text, strict=False):
        if cites:
            p.citations = [*(p.citations or ()), *cites]
