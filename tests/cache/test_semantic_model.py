"""The local embedding model: BERT's WordPiece in pure Python and the shipped ONNX model."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from llmswitch.cache.semantic.local_model import LocalEmbedder
from llmswitch.cache.semantic.wordpiece import WordPiece, basic_tokens

# ids as Hugging Face's BertWordPieceTokenizer (lowercase=True) gives them over the same vocab.txt
IDS = [
    ("Hello, world!", [101, 7592, 1010, 2088, 999, 102]),
    ("naïve café 日本", [101, 15743, 7668, 1864, 1876, 102]),
    ("unaffable tokenization", [101, 14477, 20961, 3468, 19204, 3989, 102]),
    ("", [101, 102]),
]


@pytest.mark.parametrize(("text", "ids"), IDS)
def test_wordpiece_ids_match_bert_uncased(text: str, ids: list[int]) -> None:
    assert WordPiece.load_default().encode(text) == ids


def test_basic_tokens_split_punctuation_cjk_and_drop_control_characters() -> None:
    assert basic_tokens("Don't\u200b stop—x^2 $5\x00!") == ["don", "'", "t", "stop", "—", "x", "^", "2", "$", "5", "!"]
    assert basic_tokens("東京タワー") == ["東", "京", "タワー"]


def test_long_text_is_cut_to_the_model_window_with_sep_last() -> None:
    ids = WordPiece.load_default().encode("word " * 400, max_length=256)
    assert len(ids) == 256
    assert ids[0] == 101
    assert ids[-1] == 102


@pytest.fixture(scope="module")
def model() -> LocalEmbedder:
    return LocalEmbedder.load()


def test_embeddings_are_unit_vectors_and_close_for_paraphrases(model: LocalEmbedder) -> None:
    texts = [
        "How do I reverse a list in Python?",
        "What's the way to reverse a Python list?",
        "What is the capital of France?",
    ]
    vectors = np.asarray(asyncio.run(model.embed(texts)), dtype=np.float32)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.9
    assert sims[0, 2] < 0.3


def test_a_batch_embeds_as_its_rows_do_alone(model: LocalEmbedder) -> None:
    # padding in a batch must not leak into the mean pooling
    texts = ["short", "a much longer sentence that needs many more word pieces than the first"]
    batch = model.embed_sync(texts)
    alone = np.vstack([model.embed_sync([t]) for t in texts])
    np.testing.assert_allclose(batch, alone, atol=1e-4)


def test_a_missing_model_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_SEMANTIC_MODEL_PATH", "/nonexistent/model.onnx")
    with pytest.raises(FileNotFoundError, match=r"/nonexistent/model\.onnx"):
        LocalEmbedder.load()
