"""TipMemory: the agent's own tips, per (task, variation) slot, retrieved by relevance.

Each entry holds a tip, the action taken at one step of the episode it came from, that episode's
final score, the retrieval key (the episode history at that step), the iteration and the run id.
Retrieval for the current state: score the slot's keys against the current history (BM25 over
the query's self-score by default, so a key's relevance does not hinge on how well the others
match: ``retrievers.py``), keep those at or above the relevance cut-off, order them by episode score
(best first), drop entries whose shown text (tip, action, score: ``prompts.format_tip``) repeats
one already chosen and return the top k. This follows the official code's recipe (similarity
cut-off, then score order, top 10) with BM25 in place of MiniLM embeddings by default
(docs/deviations.md).

Speed: rank-bm25 cannot add documents to an index, so a slot is marked dirty on add and rebuilt
lazily at its next query, not on every add.

Persistence (``jsonl.py``): with a ``path``, every ``add`` appends its new entries to a JSONL file
and flushes it to disk before returning. ``TipMemory.load`` replays the file; a run killed mid-write
leaves at most a partial last line, which is dropped with a warning (and cut from the file, so later
appends start on a clean line). A damaged line before the last is not guessed at: loading stops with
a one-line ``DamagedRunFileError`` that names the line and how to repair it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from empo2_lite import jsonl
from empo2_lite.config import MemoryConfig
from empo2_lite.prompts import format_tip
from empo2_lite.memory.retrievers import Retriever, make_retriever
from empo2_lite.trajectory import Trajectory, append_history


@dataclass(frozen=True)
class TipEntry:
    """One remembered step: the tip of its episode and where in the episode it applies."""

    task: str
    variation: int
    tip: str
    action: str
    """The action taken at this step of the source episode."""
    score: int
    """The source episode's final score."""
    key: str
    """Retrieval key: the episode history at this step."""
    iteration: int = 0
    run_id: str = ""

    def rendered(self) -> str:
        """The entry as the agent sees it in a prompt."""
        return format_tip(self.tip, self.action, self.score)

    def identity(self) -> tuple[str, str, str]:
        """What makes two entries exact duplicates."""
        return (self.tip, self.action, self.key)


@dataclass
class _Slot:
    """The entries of one (task, variation) and their lazily built index."""

    capacity: int
    entries: deque = field(default_factory=deque)
    seen: set = field(default_factory=set)
    retriever: Retriever | None = None
    dirty: bool = True


class TipMemory:
    """Tips by (task, variation), with relevance retrieval and optional JSONL persistence."""

    def __init__(self, config: MemoryConfig | None = None, path: str | Path | None = None) -> None:
        self.config = config or MemoryConfig()
        self.config.validate()
        make_retriever(self.config.retriever)  # fail now, not at the first query, if an extra is missing
        self.path = Path(path) if path else None
        self._slots: dict[tuple[str, int], _Slot] = {}

    # -- writing -----------------------------------------------------------------------------
    def add(self, entries: Iterable[TipEntry]) -> int:
        """Add entries (exact duplicates skipped, oldest evicted past capacity); return how many
        were new. With a path, the new entries are on disk when this returns."""
        added = [entry for entry in entries if self._insert(entry)]
        if self.path and added:
            jsonl.append_rows(self.path, [asdict(entry) for entry in added])
        return len(added)

    def add_episode(self, trajectory: Trajectory, tip: str, iteration: int = 0, run_id: str = "") -> int:
        """Store ``tip`` for ``trajectory``: one entry per step, or one per episode (config)."""
        if not tip or not trajectory.turns:
            return 0
        common = {"task": trajectory.task, "variation": trajectory.variation, "tip": tip,
                  "score": trajectory.score, "iteration": iteration, "run_id": run_id}
        if self.config.entries_per == "episode":
            last = trajectory.turns[-1]
            whole = append_history(last.history, last.action, trajectory.final_observation)
            return self.add([TipEntry(action=last.action, key=whole, **common)])
        return self.add(TipEntry(action=turn.action, key=turn.history, **common) for turn in trajectory.turns)

    def _insert(self, entry: TipEntry) -> bool:
        slot = self._slots.setdefault((entry.task, entry.variation), _Slot(self.config.capacity))
        identity = entry.identity()
        if identity in slot.seen:
            return False
        slot.entries.append(entry)
        slot.seen.add(identity)
        if len(slot.entries) > slot.capacity:
            slot.seen.discard(slot.entries.popleft().identity())
        slot.dirty = True
        return True

    # -- reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(len(slot.entries) for slot in self._slots.values())

    def slot_size(self, task: str, variation: int) -> int:
        """Entries stored for one slot."""
        slot = self._slots.get((task, variation))
        return len(slot.entries) if slot else 0

    def retrieve(self, task: str, variation: int, history: str) -> list[TipEntry]:
        """Up to ``top_k`` entries relevant to ``history``, best episode score first, none shown
        twice (two entries that would render the same text count once)."""
        ranked = self._ranked(task, variation, history)
        chosen, rendered = [], set()
        for entry, relevance in ranked:
            if relevance >= self.config.relevance_threshold and entry.rendered() not in rendered:
                chosen.append(entry)
                rendered.add(entry.rendered())
                if len(chosen) == self.config.top_k:
                    break
        return chosen

    def tips_for(self, query) -> list[str]:
        """The rollout engine's retrieval hook: the shown text of each entry retrieved for a
        ``RetrievalQuery`` (tip, action at that step, episode score)."""
        return [entry.rendered() for entry in self.retrieve(query.task, query.variation, query.history)]

    def _ranked(self, task: str, variation: int, history: str) -> list[tuple[TipEntry, float]]:
        """All entries of the slot with their relevance, in retrieval order (score, then relevance)."""
        slot = self._slots.get((task, variation))
        if not slot or not slot.entries:
            return []
        if slot.dirty or slot.retriever is None:
            slot.retriever = make_retriever(self.config.retriever)
            slot.retriever.fit([entry.key for entry in slot.entries])
            slot.dirty = False
        relevance = slot.retriever.scores(history)
        pairs = list(zip(slot.entries, relevance.tolist()))
        return sorted(pairs, key=lambda pair: (-pair[0].score, -pair[1]))

    # -- inspection (notebooks) ----------------------------------------------------------------
    def slot_frame(self, task: str, variation: int) -> pd.DataFrame:
        """The slot's entries as a table, oldest first."""
        slot = self._slots.get((task, variation))
        return pd.DataFrame([asdict(entry) for entry in slot.entries] if slot else [],
                            columns=[f for f in TipEntry.__dataclass_fields__])

    def explain(self, task: str, variation: int, history: str) -> pd.DataFrame:
        """Every entry of the slot with its relevance, whether it passes the cut-off, and whether
        it would be shown, in retrieval order."""
        shown = {id(entry) for entry in self.retrieve(task, variation, history)}
        rows = [{"tip": entry.tip, "action": entry.action, "episode_score": entry.score,
                 "relevance": round(relevance, 4), "passes_cutoff": relevance >= self.config.relevance_threshold,
                 "shown": id(entry) in shown}
                for entry, relevance in self._ranked(task, variation, history)]
        return pd.DataFrame(rows, columns=["tip", "action", "episode_score", "relevance", "passes_cutoff", "shown"])

    # -- persistence ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, config: MemoryConfig | None = None) -> "TipMemory":
        """Rebuild a memory from its JSONL file (missing file: empty memory at that path)."""
        memory = cls(config, path=None)
        path = Path(path)
        for entry in jsonl.read_intact(path, lambda row: TipEntry(**row), record="a tip record",
                                       repair="fix or delete that line, or delete the file to continue with "
                                              "an empty memory"):
            memory._insert(entry)
        memory.path = path
        return memory
