"""The run folder: config, metrics, evaluations, memory, TensorBoard events and checkpoints.

Layout of ``runs/<name>/`` (root: ``EMPO2_RUNS``, default ``./runs``)::

    config.json         the full TrainConfig
    metrics.jsonl       one line per finished iteration
    eval.jsonl          one line per evaluation
    memory.jsonl        the tip memory (append-only, see memory/store.py)
    tensorboard/        TensorBoard events of the same metrics
    checkpoints/iter-000003/
        adapter.safetensors   LoRA weights
        optimizer.pt          optimizer state (tensors and numbers only)
        state.json            iteration, RNG states, novelty states, and the sizes of
                              metrics.jsonl / eval.jsonl / memory.jsonl at this checkpoint
    checkpoints/latest        name of the newest complete checkpoint

Nothing is lost or half-written: a checkpoint is assembled in a temporary folder and renamed into
place, then ``latest`` is replaced atomically. Resuming truncates the append-only files to their
sizes at the checkpoint, so an iteration that was interrupted leaves no trace and is redone.
Checkpoints load without unpickling arbitrary objects (safetensors, JSON, and
``torch.load(weights_only=True)`` for the optimizer state).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

CHECKPOINT_FILES = ("metrics.jsonl", "eval.jsonl", "memory.jsonl")


RUNS_VARIABLE = "EMPO2_RUNS"


def runs_root() -> Path:
    """Where runs live (``EMPO2_RUNS`` overrides ./runs)."""
    return Path(os.environ.get(RUNS_VARIABLE) or "runs")


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never a mix."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


class RunDir:
    """One run's folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._writer = None

    @classmethod
    def named(cls, name: str) -> "RunDir":
        return cls(runs_root() / name)

    # -- files --------------------------------------------------------------------------------
    @property
    def memory_path(self) -> Path:
        return self.path / "memory.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def write_config(self, config_text: str) -> None:
        write_atomic(self.path / "config.json", config_text)

    def read_config(self) -> dict[str, Any]:
        path = self.path / "config.json"
        if not path.exists():
            raise FileNotFoundError(f"{self.path} has no config.json: it is not a run folder")
        return json.loads(path.read_text())

    def append(self, file_name: str, record: dict[str, Any]) -> None:
        """Append one JSON line and flush it to disk."""
        with open(self.path / file_name, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
            file.flush()
            os.fsync(file.fileno())

    def read_jsonl(self, file_name: str) -> list[dict[str, Any]]:
        path = self.path / file_name
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    def log_scalars(self, iteration: int, metrics: dict[str, Any]) -> None:
        """Numeric metrics to TensorBoard (namespaced as in the metrics file)."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.path / "tensorboard"))
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(key, value, iteration)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self, iteration: int, adapter: dict[str, torch.Tensor], optimizer_state: dict,
                        state: dict[str, Any]) -> Path:
        """Write checkpoint ``iteration`` atomically and point ``latest`` at it."""
        self.checkpoints.mkdir(exist_ok=True)
        name = f"iter-{iteration:06d}"
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.checkpoints))
        import torch
        from safetensors.torch import save_file

        save_file({key: value.detach().cpu().contiguous() for key, value in adapter.items()},
                  str(staging / "adapter.safetensors"))
        torch.save(optimizer_state, staging / "optimizer.pt")
        sizes = {file: (self.path / file).stat().st_size if (self.path / file).exists() else 0 for file in CHECKPOINT_FILES}
        write_atomic(staging / "state.json", json.dumps({**state, "iteration": iteration, "file_sizes": sizes}))
        final = self.checkpoints / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        write_atomic(self.checkpoints / "latest", name)
        return final

    def latest_checkpoint(self) -> Path | None:
        pointer = self.checkpoints / "latest"
        if not pointer.exists():
            return None
        path = self.checkpoints / pointer.read_text().strip()
        return path if (path / "state.json").exists() else None

    def load_checkpoint(self, path: Path) -> tuple[dict[str, torch.Tensor], dict, dict[str, Any]]:
        """Adapter weights, optimizer state and state.json of checkpoint ``path``; the append-only
        files are cut back to their sizes at that checkpoint."""
        state = json.loads((path / "state.json").read_text())
        for file, size in state["file_sizes"].items():
            target = self.path / file
            if target.exists() and target.stat().st_size > size:
                with open(target, "r+b") as handle:
                    handle.truncate(size)
        import torch
        from safetensors.torch import load_file

        adapter = load_file(str(path / "adapter.safetensors"))
        optimizer_state = torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu")  # resumable on another device
        return adapter, optimizer_state, state
