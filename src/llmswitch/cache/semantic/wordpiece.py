"""BERT's uncased WordPiece tokenizer, pure Python, for the local embedding model.

The local model (all-MiniLM-L6-v2) was trained on the ``bert-base-uncased`` vocabulary, shipped
beside this module as ``vocab.txt`` (Apache-2.0, from google-research/bert via
sentence-transformers). This is the same algorithm as Hugging Face's ``BertTokenizer`` with
``do_lower_case=True``: clean, split CJK characters, lower-case and strip accents, split on
punctuation, then greedy longest-match WordPiece. A query is a few dozen words, so pure Python
costs tens of microseconds, and the ``tokenizers`` wheel (and the hub client it depends on) stays
out of the install.

    >>> tok = WordPiece.load_default()
    >>> tok.tokenize("Flights from Paris to NYC")
    ['flights', 'from', 'paris', 'to', 'nyc']
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

__all__ = ["WordPiece"]

_VOCAB_PATH = Path(__file__).with_name("vocab.txt")
_MAX_WORD_CHARS = 100


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    # BERT treats every non-alphanumeric ASCII character as punctuation, "$" and "^" included
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _clean(text: str) -> str:
    out: list[str] = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


def _strip_accents(word: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", word) if unicodedata.category(ch) != "Mn")


def basic_tokens(text: str) -> list[str]:
    """Lower-cased words and punctuation marks, as BERT's basic tokenizer splits them."""
    tokens: list[str] = []
    for word in _clean(text).split():
        word = _strip_accents(word.lower())
        start = 0
        for i, ch in enumerate(word):
            if _is_punctuation(ch):
                if start < i:
                    tokens.append(word[start:i])
                tokens.append(ch)
                start = i + 1
        if start < len(word):
            tokens.append(word[start:])
    return tokens


class WordPiece:
    """Text to vocabulary ids, with ``[CLS]`` and ``[SEP]`` around and a length cap."""

    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab
        self.unk_id = vocab["[UNK]"]
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]

    @classmethod
    def load(cls, path: Path) -> WordPiece:
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls({token: i for i, token in enumerate(lines)})

    @staticmethod
    @lru_cache(maxsize=1)
    def load_default() -> WordPiece:
        return WordPiece.load(_VOCAB_PATH)

    def _word_ids(self, word: str) -> list[int]:
        if len(word) > _MAX_WORD_CHARS:
            return [self.unk_id]
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = -1
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.vocab.get(piece, -1)
                if found >= 0:
                    break
                end -= 1
            if found < 0:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    def tokenize(self, text: str) -> list[str]:
        """The basic tokens (before WordPiece splits them): what the guard compares too."""
        return basic_tokens(text)

    def encode(self, text: str, max_length: int = 256) -> list[int]:
        """``[CLS] pieces… [SEP]``, the pieces cut so the whole is at most ``max_length`` ids."""
        ids = [self.cls_id]
        for word in basic_tokens(text):
            ids.extend(self._word_ids(word))
            if len(ids) >= max_length - 1:
                del ids[max_length - 1 :]
                break
        ids.append(self.sep_id)
        return ids
