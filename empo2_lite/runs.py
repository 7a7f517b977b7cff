"""The run folder: config, metrics, evaluations, memory, TensorBoard events and checkpoints.

``RunDir`` owns every path of a run and the format of every file but one: ``memory.jsonl`` is
read and appended by ``TipMemory`` (memory/store.py) at ``RunDir.memory_path``, in its own row
format. Both append and read JSON lines through ``jsonl.py``, so a row is on disk when the call
returns and a line torn by a kill is handled in one place. Layout of ``runs/<name>/`` (root:
``EMPO2_RUNS``, default ``./runs``)::

    config.json         the full TrainConfig
    metrics.jsonl       one line per finished iteration
    eval.jsonl          one line per evaluation (periodic, final, baselines)
    ood-<task>.jsonl    one line per iteration of an OOD adaptation to <task>
    memory.jsonl        the tip memory (append-only, see memory/store.py)
    steps.jsonl         one line per step of every training episode (transitions.py: what an
                        offline critic such as Retrospex's learns from)
    tensorboard/        TensorBoard events of the same metrics
    figures/            the run's figures (``make demo``), PNG + PDF
    checkpoints/iter-000003/
        adapter.safetensors   LoRA weights
        optimizer.pt          optimizer state (tensors and numbers only)
        state.json            iteration, RNG states, novelty states, and the sizes of
                              metrics.jsonl / eval.jsonl / memory.jsonl at this checkpoint
    checkpoints/latest        name of the newest complete checkpoint
    warm_start.json     a warm start only (``warm_start/``): the variations and actions it
                        cloned, its settings and minutes

Nothing is lost or half-written: a checkpoint is assembled in a temporary folder and renamed into
place, then ``latest`` is replaced atomically. Reading never changes a file (asking for a run's
status does not even create its folder: the folder appears with the first write). Resuming is two
steps: ``read_checkpoint`` loads the state, and ``rewind_to`` cuts the append-only files back to
their sizes at that checkpoint, so an iteration that was interrupted leaves no trace and is redone.
A run stopped for good by a time budget ends at its latest checkpoint instead (``end_early``).
Checkpoints load without unpickling arbitrary objects (safetensors, JSON, and
``torch.load(weights_only=True)`` for the optimizer state).

No top-level torch import: the command line reads run folders on its fast error path.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empo2_lite import jsonl
from empo2_lite.config import ConfigError, TrainConfig, config_json
from empo2_lite.errors import NotARunError

if TYPE_CHECKING:
    import torch

CONFIG_FILE, METRICS_FILE, EVAL_FILE, MEMORY_FILE = "config.json", "metrics.jsonl", "eval.jsonl", "memory.jsonl"
STEPS_FILE = "steps.jsonl"
CHECKPOINT_FILES = (METRICS_FILE, EVAL_FILE, MEMORY_FILE, STEPS_FILE)
"""The append-only files whose sizes a checkpoint records (and resuming rewinds to)."""
OOD_PREFIX = "ood-"
WARM_START_FILE = "warm_start.json"

RUNS_VARIABLE = "EMPO2_RUNS"


def runs_root() -> Path:
    """Where runs live (``EMPO2_RUNS`` overrides ./runs)."""
    return Path(os.environ.get(RUNS_VARIABLE) or "runs")


@contextmanager
def runs_under(root: str | Path) -> Iterator[Path]:
    """Make ``root`` the runs root inside the block (jobs name runs relative to it), then restore."""
    before = os.environ.get(RUNS_VARIABLE)
    os.environ[RUNS_VARIABLE] = str(root)
    try:
        yield Path(root)
    finally:
        if before is None:
            os.environ.pop(RUNS_VARIABLE, None)
        else:
            os.environ[RUNS_VARIABLE] = before


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new file, never a mix."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)


def _checkpoint_state(checkpoint: Path) -> dict[str, Any]:
    """``state.json`` of ``checkpoint``."""
    return json.loads((checkpoint / "state.json").read_text())


class RunDir:
    """One run's folder (it need not exist yet: it is created by the first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer = None

    @classmethod
    def named(cls, name: str) -> "RunDir":
        """The run called ``name`` under the runs root."""
        return cls(runs_root() / name)

    @classmethod
    def existing(cls, name: str, flag: str) -> "RunDir":
        """The run called ``name``, or the one-line ConfigError naming ``flag`` (``--run``,
        ``--resume``) that every command and job gives for a name with no run behind it."""
        run = cls.named(name)
        if not run.exists():
            raise ConfigError(f"{flag}: no run named {name!r} under {runs_root()}")
        return run

    # -- the run as a whole ---------------------------------------------------------------------
    def exists(self) -> bool:
        """Whether this is a run folder (it has a ``config.json``)."""
        return (self.path / CONFIG_FILE).exists()

    def config(self) -> TrainConfig:
        """The run's TrainConfig (a file of an older format is migrated, see ``TrainConfig.from_dict``)."""
        if not self.exists():
            raise NotARunError(f"{self.path} has no {CONFIG_FILE}: it is not a run folder (check the name, "
                               "or train it first)")
        return TrainConfig.from_dict(json.loads((self.path / CONFIG_FILE).read_text()))

    def start(self, config: TrainConfig) -> None:
        """Begin a fresh run here: drop the files of an earlier start that never reached a
        checkpoint (they would otherwise mix into this run's), then write ``config.json``."""
        for stale in CHECKPOINT_FILES:
            (self.path / stale).unlink(missing_ok=True)
        self._create()
        write_atomic(self.path / CONFIG_FILE, config_json(config))

    @property
    def memory_path(self) -> Path:
        """The tip memory's file (read and appended by ``TipMemory``)."""
        return self.path / MEMORY_FILE

    @property
    def figures(self) -> Path:
        """Where the run's own figures are saved (``plots.save_figure`` creates it)."""
        return self.path / "figures"

    # -- results --------------------------------------------------------------------------------
    def append_metrics(self, row: dict[str, Any]) -> None:
        """One finished iteration's metrics."""
        self._append(METRICS_FILE, row)

    def append_eval(self, row: dict[str, Any]) -> None:
        """One evaluation (periodic, final or a baseline's)."""
        self._append(EVAL_FILE, row)

    def append_steps(self, rows: list[dict[str, Any]]) -> None:
        """One iteration's episodes, one row per step (``transitions.step_rows``)."""
        if rows:
            jsonl.append_rows(self.path / STEPS_FILE, rows)

    def read_steps(self) -> list[dict[str, Any]]:
        """Every recorded step, in order ([] when none: runs before the file existed)."""
        return jsonl.read_rows(self.path / STEPS_FILE)

    def write_ood(self, task: str, history: list[dict[str, Any]]) -> None:
        """A whole OOD adaptation of this run's policy to ``task`` (one row per iteration, each
        naming the task trained on and the task adapted to), replacing any earlier one. Written in
        one piece: an interrupted adaptation leaves nothing and simply runs again."""
        trained_on = self.config().task
        rows = [{"trained_on": trained_on, "task": task, **row} for row in history]
        write_atomic(self.path / f"{OOD_PREFIX}{task}.jsonl", "".join(json.dumps(row) + "\n" for row in rows))

    def write_warm_start(self, record: dict[str, Any]) -> None:
        """What a warm start cloned and how (written once, when its adapter is saved)."""
        write_atomic(self.path / WARM_START_FILE, json.dumps(record, indent=1))

    def read_warm_start(self) -> dict[str, Any] | None:
        """The warm start's record, or None when this folder is not a finished warm start."""
        path = self.path / WARM_START_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every iteration's metrics, in order ([] when none)."""
        return jsonl.read_rows(self.path / METRICS_FILE)

    def read_evals(self) -> list[dict[str, Any]]:
        """Every evaluation row, in order ([] when none)."""
        return jsonl.read_rows(self.path / EVAL_FILE)

    def read_ood(self) -> dict[str, list[dict[str, Any]]]:
        """The OOD adaptations of this run by target task (sorted by task name)."""
        paths = sorted(self.path.glob(f"{OOD_PREFIX}*.jsonl"))
        return {path.name[len(OOD_PREFIX):-len(".jsonl")]: jsonl.read_rows(path) for path in paths}

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
        """Flush and close the TensorBoard writer (a later ``log_scalars`` opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        """The folder of the checkpoints."""
        return self.path / "checkpoints"

    def save_checkpoint(self, iteration: int, adapter: dict[str, torch.Tensor], optimizer_state: dict,
                        state: dict[str, Any]) -> Path:
        """Write checkpoint ``iteration`` atomically and point ``latest`` at it."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
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
        """The newest complete checkpoint, or None."""
        pointer = self.checkpoints / "latest"
        if not pointer.exists():
            return None
        path = self.checkpoints / pointer.read_text().strip()
        return path if (path / "state.json").exists() else None

    def checkpoint_state(self, checkpoint: Path) -> dict[str, Any]:
        """``state.json`` of ``checkpoint`` (iteration, random streams, ranks, file sizes)."""
        return _checkpoint_state(checkpoint)

    def iterations_done(self) -> int:
        """Iterations the latest checkpoint holds (0 without one)."""
        checkpoint = self.latest_checkpoint()
        return 0 if checkpoint is None else _checkpoint_state(checkpoint)["iteration"]

    def read_checkpoint(self, checkpoint: Path) -> tuple[dict[str, torch.Tensor], dict, dict[str, Any]]:
        """Adapter weights, optimizer state and state.json of ``checkpoint``; no file is changed."""
        import torch

        adapter = self.read_adapter(checkpoint)
        optimizer_state = torch.load(checkpoint / "optimizer.pt", weights_only=True, map_location="cpu")  # resumable on another device
        return adapter, optimizer_state, _checkpoint_state(checkpoint)

    def read_adapter(self, checkpoint: Path) -> dict[str, torch.Tensor]:
        """The LoRA weights of ``checkpoint`` alone (what evaluating a trained run needs)."""
        from safetensors.torch import load_file

        return load_file(str(checkpoint / "adapter.safetensors"))

    def end_early(self) -> int:
        """End a run stopped before its last iteration (a time budget ran out) at its latest
        checkpoint: the append-only files are cut back to it and ``config.json`` takes its iteration
        count as the run's length, so that its evaluations (keyed on that length), tables and figures
        say how far it trained, and it counts as done. Returns the count (0: no checkpoint, nothing
        changed)."""
        checkpoint = self.latest_checkpoint()
        if checkpoint is None:
            return 0
        self.rewind_to(checkpoint)
        done = _checkpoint_state(checkpoint)["iteration"]
        write_atomic(self.path / CONFIG_FILE, config_json(replace(self.config(), iterations=done)))
        return done

    def rewind_to(self, checkpoint: Path) -> None:
        """Cut the append-only files back to their sizes at ``checkpoint`` (the step of resuming
        that drops what an interrupted iteration had written). A file the checkpoint does not name
        did not exist when it was written (``steps.jsonl`` before it was kept): cut to nothing."""
        sizes = _checkpoint_state(checkpoint)["file_sizes"]
        for file in dict.fromkeys([*sizes, *CHECKPOINT_FILES]):
            jsonl.cut_to(self.path / file, sizes.get(file, 0))

    # -- internals ------------------------------------------------------------------------------
    def _create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def _append(self, file_name: str, row: dict[str, Any]) -> None:
        """Append one JSON line, on disk when this returns (creating the folder)."""
        jsonl.append_rows(self.path / file_name, [row])
