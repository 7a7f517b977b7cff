"""Data-parallel training (``distributed.py``) on the CPU: 2 gloo ranks against 1 process.

Two spawned processes join one process group through a FileStore and train the golden EMPO² run
(cpu-smoke, seed 15) on replayed transitions, each rank playing one of the two groups: one plain
iteration with tips written and novelty paid, then a dev evaluation split across the ranks. One
iteration keeps the suite fast; the next would start from the memory and novelty counts the test
shows to be identical on both ranks and to one process's.
Plain SGD with a small clipping norm stands in for AdamW, which would hide a gradient scale error:
the gradients each step applies (after the all-reduce and the clipping) must be those of one
process on the same episodes, and so must the pre-clip gradient norms, the metrics, the memory
file and the evaluation row. Both ranks must hold the same memory, novelty counts and LoRA
weights, and only rank 0 may write. A rank that dies mid-collective ends the other with one line.
The update's collective logic is also run in two threads of one process (``ThreadWorld``), which
takes milliseconds per step: an idle rank, a nan loss on one rank, clipping after the sum.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch

from golden_runs import RUNS, VOLATILE_PREFIXES, _stable, varying_pool
from test_golden_runs import same

SETTINGS = {**RUNS["empo2"], "iterations": 1, "eval_every": 1, "task": "identify-life-stages-2",
            "update.grad_clip": 0.05}
LEARNING_RATE = 0.1


class RecordingSGD(torch.optim.SGD):
    """Plain SGD that keeps the gradients of every step it takes (after clipping)."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.applied: list[list[torch.Tensor]] = []

    def step(self, closure=None):
        self.applied.append([p.grad.detach().clone() for group in self.param_groups for p in group["params"]])
        return super().step(closure)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def train_golden(root: Path, name: str) -> dict:
    """Train ``SETTINGS`` into ``root/name`` in this process's world; what the test compares."""
    from peft import get_peft_model_state_dict

    from empo2_lite.config import apply_overrides, preset
    from empo2_lite.runs import RunDir
    from empo2_lite.tasks import get_task
    from empo2_lite.trainer import Trainer

    config = apply_overrides(preset("cpu-smoke"), {**SETTINGS, "name": name})
    trainer = Trainer(config, RunDir(root / name))
    trainer.optimizer = RecordingSGD(trainer.policy.trainable_parameters(), lr=LEARNING_RATE)
    trainer.train(progress=False, pool=varying_pool(config.n_envs))
    task = get_task(config.task)
    memory = [trainer.memory.slot_frame(task.name, variation).drop(columns="run_id", errors="ignore").to_dict("records")
              for variation in task.train_variations]
    novelty = sorted(trainer.novelty.to_json()["slots"], key=lambda slot: (slot[0], slot[1]))
    return {"memory": _digest(memory), "novelty": _digest(novelty), "memory_has_path": trainer.memory.path is not None,
            "lora": {key: value.clone() for key, value in get_peft_model_state_dict(trainer.policy.model).items()},
            "applied": trainer.optimizer.applied}


def _rank_main(rank: int, store: str, root: str, out: str) -> None:
    """One spawned rank: join the group, record what this process writes, train, save the results."""
    import torch.distributed as dist

    from empo2_lite import jsonl, runs

    torch.set_num_threads(1)
    dist.init_process_group("gloo", store=dist.FileStore(store, 2), rank=rank, world_size=2,
                            timeout=timedelta(seconds=120))
    written: list[str] = []
    append_rows = jsonl.append_rows

    def recording_append(path, rows):
        written.append(Path(path).name)
        return append_rows(path, rows)

    jsonl.append_rows = recording_append
    for method in ("start", "save_checkpoint", "log_scalars", "write_ood"):
        original = getattr(runs.RunDir, method)

        def recorder(self, *args, _original=original, _method=method, **kwargs):
            written.append(_method)
            return _original(self, *args, **kwargs)

        setattr(runs.RunDir, method, recorder)
    result = train_golden(Path(root), "parallel")
    result["written"] = written
    torch.save(result, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def _spawn(target, args_of_rank) -> list[int]:
    """Run ``target`` in 2 spawned processes; their exit codes."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=args_of_rank(rank)) for rank in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    for process in processes:
        if process.is_alive():  # a hung rank: end it rather than leave it to the next tests
            process.kill()
            process.join()
    return [process.exitcode for process in processes]


@pytest.fixture(scope="module")
def runs_compared(tmp_path_factory):
    """The 1-process run (here) and the 2-rank run (spawned), on the same global batches."""
    root = tmp_path_factory.mktemp("dp")
    codes = _spawn(_rank_main, lambda rank: (rank, str(root / "store"), str(root), str(root)))
    assert codes == [0, 0], f"a rank failed: exit codes {codes}"
    ranks = [torch.load(root / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    single = train_golden(root, "single")
    return root, single, ranks


@pytest.mark.slow
def test_two_ranks_hold_one_memory_and_the_same_weights(runs_compared):
    _, single, ranks = runs_compared
    assert ranks[0]["memory"] == ranks[1]["memory"] == single["memory"]
    assert ranks[0]["novelty"] == ranks[1]["novelty"] == single["novelty"]
    assert ranks[0]["lora"].keys() == ranks[1]["lora"].keys()
    assert all(torch.equal(ranks[0]["lora"][key], ranks[1]["lora"][key]) for key in ranks[0]["lora"])


@pytest.mark.slow
def test_two_ranks_apply_the_one_process_gradients(runs_compared):
    root, single, ranks = runs_compared
    assert len(ranks[0]["applied"]) == len(single["applied"]) >= 1
    for step, (parallel, alone) in enumerate(zip(ranks[0]["applied"], single["applied"])):
        for a, b in zip(parallel, alone):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-7), f"step {step}: gradients differ"
    metrics = [json.loads(line) for line in (root / "parallel" / "metrics.jsonl").read_text().splitlines()]
    alone = [json.loads(line) for line in (root / "single" / "metrics.jsonl").read_text().splitlines()]
    assert all(row["losses/grad_norm"] > SETTINGS["update.grad_clip"] for row in metrics), "clipping not active"
    summed = ("losses/", "diagnostics/logprob_gap")  # sums over ranks: another summation order
    differences = same([_stable(row, VOLATILE_PREFIXES + summed) for row in metrics],
                       [_stable(row, VOLATILE_PREFIXES + summed) for row in alone])
    assert not differences, "\n".join(differences[:10])
    for parallel_row, alone_row in zip(metrics, alone):
        for key in alone_row:
            if key.startswith(summed):
                assert parallel_row[key] == pytest.approx(alone_row[key], rel=1e-4, abs=1e-6), key


@pytest.mark.slow
def test_rank_zero_alone_writes_the_run_folder(runs_compared):
    root, _, ranks = runs_compared
    assert ranks[1]["written"] == [] and not ranks[1]["memory_has_path"]
    assert {"start", "save_checkpoint", "log_scalars", "metrics.jsonl", "memory.jsonl", "eval.jsonl"} <= set(ranks[0]["written"])
    assert (root / "parallel" / "memory.jsonl").read_text() == (root / "single" / "memory.jsonl").read_text().replace(
        '"run_id": "single"', '"run_id": "parallel"')
    evals = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
             for run in ("parallel", "single") for line in (root / run / "eval.jsonl").read_text().splitlines()]
    assert evals[0] == evals[1]


@pytest.mark.slow
def test_a_run_of_two_ranks_resumes_with_two_only(runs_compared):
    from empo2_lite.config import ConfigError, MemoryConfig
    from empo2_lite.runs import RunDir
    from empo2_lite.trainer import open_for_resume

    root, _, _ = runs_compared
    run = RunDir(root / "parallel")
    state = run.checkpoint_state(run.latest_checkpoint())
    assert state["world_size"] == 2 and len(state["torch_rng_by_rank"]) == 2
    with pytest.raises(ConfigError, match=r"^--nproc_per_node: run 'parallel' was trained on 2 rank\(s\), not 1"):
        open_for_resume(run, MemoryConfig())


def _lost_rank_main(rank: int, store: str, out: str) -> None:
    """Rank 1 dies after joining (a barrier first, so that rank 0's set-up has finished); rank 0's
    next collective must end with the one-line error."""
    import torch.distributed as dist

    from empo2_lite.distributed import RankLostError, World

    dist.init_process_group("gloo", store=dist.FileStore(store, 2), rank=rank, world_size=2,
                            timeout=timedelta(seconds=3))
    dist.barrier()  # both ranks past the connection set-up: on a loaded VM rank 1 could leave in its middle
    if rank == 1:
        os._exit(3)
    try:
        World(rank=0, size=2, timeout_s=3).gather([1], "the rollout phase")
    except RankLostError as error:
        Path(out).write_text(str(error))


@pytest.mark.slow
def test_a_lost_rank_ends_the_job_with_one_line(tmp_path):
    codes = _spawn(_lost_rank_main, lambda rank: (rank, str(tmp_path / "store"), str(tmp_path / "message")))
    assert codes[1] == 3
    message = (tmp_path / "message").read_text()
    assert "\n" not in message
    assert message.startswith("rank 0: another rank died or did not answer within 3 s during the rollout phase")
    assert message.endswith("resume it with the same --nproc_per_node and `train --resume NAME`")


def test_other_commands_and_bad_worlds_are_refused(monkeypatch, capsys):
    from empo2_lite.__main__ import main
    from empo2_lite.config import ConfigError
    from empo2_lite.distributed import World, check_world_fits, timeout_from_environment

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["tasks"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "empo2-lite: error: tasks: not under torchrun with WORLD_SIZE > 1; only `train` runs data-parallel "
        "(run the others as one process)"]
    assert main(["train", "--preset", "cpu-smoke", "--set", "variations_per_iteration=3", "--set", "group_size=4",
                 "--set", "n_envs=6"]) == 2  # refused before any process group or model
    assert capsys.readouterr().err.startswith("empo2-lite: error: n_envs: 6 environments per rank would split a group")
    monkeypatch.setenv("RANK", "1")  # every rank refuses; rank 0 alone says so
    assert main(["tasks"]) == 2
    assert capsys.readouterr().err == ""
    with pytest.raises(ConfigError, match="^variations_per_iteration: 1 groups cannot be shared by 2 ranks"):
        check_world_fits(1, 4, 4, 2)
    check_world_fits(3, 4, 8, 2)  # two groups in one wave of 8
    check_world_fits(3, 4, 4, 2)  # one group a wave
    check_world_fits(2, 4, 6, 2)  # each rank's only group fits in one wave
    with pytest.raises(ConfigError, match=r"^n_envs: 6 environments per rank would split a group of 4 across waves "
                                          r"\(a rank plays up to 8 episodes\); use a multiple of group_size \(e.g. 4\) "
                                          r"or at least 8$"):
        check_world_fits(3, 4, 6, 2)
    monkeypatch.setenv("EMPO2_DIST_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="^EMPO2_DIST_TIMEOUT: 'soon' is not allowed"):
        timeout_from_environment()
    assert [list(World(rank=r, size=2).block(3)) for r in range(2)] == [[0, 1], [2]]


class ThreadWorld:
    """Two ranks as two threads of this process: ``sum_`` adds both threads' tensors (the update's
    only collective), and counts the calls, so the update's data-parallel path runs in milliseconds."""

    def __init__(self) -> None:
        import threading

        self.barrier = threading.Barrier(2)
        self.slots: list[torch.Tensor | None] = [None, None]
        self.calls = [0, 0]

    def rank(self, rank: int):
        from empo2_lite.distributed import World

        exchange = self

        class Rank(World):
            def sum_(self, tensor, phase):
                exchange.slots[self.rank] = tensor.clone()
                exchange.barrier.wait(timeout=60)
                total = exchange.slots[0] + exchange.slots[1]
                exchange.barrier.wait(timeout=60)
                exchange.calls[self.rank] += 1
                return tensor.copy_(total)

        return Rank(rank=rank, size=2)


def varied_samples() -> list:
    """Five packed episodes of 1-3 steps with responses of their own."""
    from empo2_lite.trajectory import TokenSample

    samples = []
    for index, steps in enumerate((3, 1, 2, 3, 2)):
        sample = TokenSample()
        for step in range(steps):
            sample.extend([65 + index] * 4, is_action=False)
            sample.extend([70 + step, 80 + index, 10], is_action=True, logprobs=[-5.5] * 3)
        samples.append(sample)
    return samples


@pytest.mark.parametrize("advantages, rank_1_owns", [
    ((1.0, -1.0, 0.5, -0.5, 0.25), (False, True, True, False, True)),
    ((1.0, -1.0, 0.5, -0.5, 0.25), (False,) * 5),  # rank 1 computes nothing, yet joins every step
    ((1.0, -1.0, 0.5, float("nan"), 0.25), (False, False, False, True, False)),  # rank 1's loss is nan
], ids=["shared", "one rank idle", "nan on one rank"])
def test_two_shares_of_an_update_add_up_to_the_one_process_update(tiny_byte_model, advantages, rank_1_owns):
    import threading

    from empo2_lite.algo.update import TrainSample, update_policy
    from empo2_lite.config import PolicyConfig, UpdateConfig
    from empo2_lite.policy import load_policy

    policies = [load_policy(PolicyConfig(model=str(tiny_byte_model), lora_rank=4, lora_alpha=8)) for _ in range(3)]
    torch.manual_seed(1)
    for name, p in policies[0].model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)  # as after some training, so gradients reach lora_A too
    for twin in policies[1:]:
        twin.model.load_state_dict(policies[0].model.state_dict())
    batch = [TrainSample.whole(sample, advantage) for sample, advantage in zip(varied_samples(), advantages)]
    config = UpdateConfig(mini_batch_actions=4, mask_granularity="off", grad_clip=0.01)  # clipping active

    def run(policy, **parallel):
        optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.1)
        return update_policy(policy, optimizer, batch, config, temperature=1.0,
                             generator=torch.Generator().manual_seed(0), **parallel)

    alone = run(policies[0])
    world, results = ThreadWorld(), [None, None]
    owns = [[not own for own in rank_1_owns], list(rank_1_owns)]
    threads = [threading.Thread(target=lambda r=r: results.__setitem__(r, run(policies[1 + r], owned=owns[r],
                                                                                world=world.rank(r))))
               for r in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    steps = alone["optimizer_steps"] + alone["skipped_steps"]
    assert steps >= 2 and world.calls == [steps, steps]  # one all-reduce per step on each rank, idle or not
    assert results[0] == results[1] or all(math.isnan(a) and math.isnan(b) for a, b in
                                           zip(results[0].values(), results[1].values()) if a != b)
    assert results[0]["skipped_steps"] == alone["skipped_steps"] == (1 if any(map(math.isnan, advantages)) else 0)
    assert results[0]["grad_norm"] == pytest.approx(alone["grad_norm"], rel=1e-5, nan_ok=True)
    assert alone["grad_norm"] > config.grad_clip or math.isnan(alone["grad_norm"])
    weights = [{n: p.detach() for n, p in policy.model.named_parameters() if p.requires_grad} for policy in policies]
    assert all(torch.equal(weights[1][n], weights[2][n]) for n in weights[0])
    assert all(torch.allclose(weights[0][n], weights[1][n], rtol=1e-5, atol=1e-7) for n in weights[0])
