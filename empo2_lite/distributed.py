"""Data-parallel training over ``torch.distributed``: one process per device, whole groups per rank.

``torchrun --nproc_per_node N -m empo2_lite train ...`` starts N copies of the command; each one
reads torchrun's ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` and joins one process group
(``init_world``): NCCL on ``cuda:LOCAL_RANK`` where the policy runs on CUDA, gloo on the CPU.
What each rank does (``iteration.py`` and ``algo/update.py`` take a ``World``):

* **Rollouts**: the iteration's variations (one GRPO/GiGPO group each) are drawn alike on every
  rank, from the same seeded generator and the same memory, and cut into N contiguous blocks
  (``World.block``); a rank plays only its block's episodes, on its own pool of ``n_envs``
  environments (``n_envs`` is per rank). A group is never split across ranks or across waves of a
  rank's pool (``check_world_fits`` refuses both): fewer groups than ranks would leave a rank
  holding a device and a pool for nothing, and a group cut by a wave boundary would have its
  episodes played by two engine batches at different times, so a rank's share of a group would
  depend on how its pool is sized. (Today nothing a wave changes reaches the next one: every
  episode draws its tokens from its own seeds, tips reach memory after the rollout phase and novelty
  is paid after the last wave; the refusal keeps it so when that changes. One process is not
  refused, and behaves the same either way.)
* **One memory**: every rank's trajectories (with their tips and visited states) are gathered to
  every rank in global episode order (``World.gather``), and every rank then pays novelty, writes
  tips to memory, computes returns and advantages over the whole batch, exactly as one process
  would. Memory and novelty counts are therefore identical on all ranks.
* **Update**: mini-batches are cut in actions over the global batch with the same seeded shuffle
  on every rank; a rank computes the gradients of its own episodes' samples only, each kept-token
  loss sum scaled by 1/A with A the mini-batch's action tokens over all ranks (every rank holds the
  whole batch, so A needs no exchange). The LoRA gradients (and the step's loss and metric sums)
  are summed with one ``all_reduce(SUM)`` per optimiser step, after all micro-batches and before
  clipping; a rank with no sample in a mini-batch sends zeros. The summed loss decides the
  non-finite skip, so all ranks skip together. DDP is not used: its per-backward hooks assume
  equal micro-batch counts on every rank.
* **One writer**: rank 0 alone writes the run folder (``World.writes``).

At world size 1 (a plain ``python -m empo2_lite`` or ``torchrun --nproc_per_node 1``) every
method is a no-op and the code paths are those of a single process.

A rank that dies or stops answering ends the job: a collective that fails or waits longer than
``EMPO2_DIST_TIMEOUT`` seconds (default ``DEFAULT_TIMEOUT_S``) raises ``RankLostError``, one line
naming the rank, the phase and how to resume. Multi-node rendezvous is torchrun's own and untested.

No top-level torch import: the command line checks the world on its fast error path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from empo2_lite.config import ConfigError
from empo2_lite.errors import KitError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

TIMEOUT_VARIABLE = "EMPO2_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1200
"""20 minutes: longer than the spread of ranks' rollout phases (ranks meet after every rollout
phase, and a GPU preset's phase takes minutes), shorter than gloo's own 30."""


class RankLostError(KitError, RuntimeError):
    """Another rank died or stopped answering in a collective; the run folder keeps its last checkpoint."""


def world_size_from_environment() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when unset)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(value)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE: {value!r} is not allowed; it must be an integer >= 1 (torchrun sets it)") from None
    if size < 1:
        raise ConfigError(f"WORLD_SIZE: {value!r} is not allowed; it must be an integer >= 1 (torchrun sets it)")
    return size


def timeout_from_environment() -> float:
    """Seconds a collective may wait (``EMPO2_DIST_TIMEOUT``), checked before torch loads."""
    value = os.environ.get(TIMEOUT_VARIABLE, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f"{TIMEOUT_VARIABLE}: {value!r} is not allowed; it must be a number of seconds > 0")
    return seconds


def refuse_other_commands(command: str) -> None:
    """Only ``train`` runs under torchrun with more than one rank: the other commands would each
    play and write the same things N times."""
    if command != "train" and world_size_from_environment() > 1:
        raise ConfigError(f"{command}: not under torchrun with WORLD_SIZE > 1; only `train` runs data-parallel "
                          "(run the others as one process)")


def check_world_fits(variations_per_iteration: int, group_size: int, n_envs: int, world_size: int) -> None:
    """Refuse settings under which a group would be split: fewer groups than ranks (a rank would
    idle), or a rank's episodes in more than one wave of its ``n_envs`` environments with
    ``n_envs`` not a multiple of ``group_size`` (a wave boundary would cut a group)."""
    if variations_per_iteration < world_size:
        raise ConfigError(f"variations_per_iteration: {variations_per_iteration} groups cannot be shared by "
                          f"{world_size} ranks (whole groups per rank); use at least {world_size} or fewer ranks")
    most_groups = -(-variations_per_iteration // world_size)  # the first ranks take the extra groups
    episodes = most_groups * group_size
    if episodes > n_envs and n_envs % group_size:
        fitting = [size for size in range(group_size, episodes, group_size) if size <= n_envs][-1:] or [group_size]
        raise ConfigError(f"n_envs: {n_envs} environments per rank would split a group of {group_size} across waves "
                          f"(a rank plays up to {episodes} episodes); use a multiple of group_size (e.g. {fitting[0]}) "
                          f"or at least {episodes}")


@dataclass
class World:
    """This process's place among the ranks; at size 1 every method is a no-op."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def writes(self) -> bool:
        """Whether this rank writes the run folder (rank 0 only)."""
        return self.rank == 0

    def block(self, count: int, rank: int | None = None) -> range:
        """The contiguous share of ``count`` items (groups, episodes) of ``rank`` (default: this
        one): sizes differ by at most one, earlier ranks taking the extra ones."""
        rank = self.rank if rank is None else rank
        base, extra = divmod(count, self.size)
        start = rank * base + min(rank, extra)
        return range(start, start + base + (rank < extra))

    def gather(self, items: list[T], phase: str) -> list[T]:
        """Every rank's ``items``, concatenated in rank order (with ``block`` shares: global order)."""
        if self.size == 1:
            return items
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.size
        self._collective(phase, lambda: dist.all_gather_object(gathered, items))
        return [item for part in gathered for item in part]

    def broadcast(self, value: T, phase: str) -> T:
        """Rank 0's ``value`` on every rank."""
        if self.size == 1:
            return value
        import torch.distributed as dist

        holder = [value]
        self._collective(phase, lambda: dist.broadcast_object_list(holder, src=0))
        return holder[0]

    def broadcast_tensors(self, tensors: Sequence[torch.Tensor], phase: str) -> None:
        """Overwrite ``tensors`` with rank 0's, in place."""
        if self.size == 1:
            return
        import torch
        import torch.distributed as dist

        with torch.no_grad():
            for tensor in tensors:
                self._collective(phase, lambda tensor=tensor: dist.broadcast(tensor.data, src=0))

    def sum_(self, tensor: torch.Tensor, phase: str) -> torch.Tensor:
        """Sum ``tensor`` over ranks, in place (one ``all_reduce``)."""
        if self.size > 1:
            import torch.distributed as dist

            self._collective(phase, lambda: dist.all_reduce(tensor, op=dist.ReduceOp.SUM))
        return tensor

    def barrier(self, phase: str) -> None:
        """Wait for every rank (after rank 0 wrote what the others read)."""
        if self.size > 1:
            import torch.distributed as dist

            self._collective(phase, dist.barrier)

    def _collective(self, phase: str, call: Callable[[], object]) -> None:
        """Run one collective; a failed or timed-out one becomes the one-line ``RankLostError``."""
        try:
            call()
        except (RuntimeError, ValueError, EOFError, ConnectionError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
            raise RankLostError(
                f"rank {self.rank}: another rank died or did not answer within {self.timeout_s:g} s during "
                f"{phase} ({first}); the run folder keeps its last checkpoint: resume it with the same "
                f"--nproc_per_node and `train --resume NAME`") from None


SINGLE = World()
"""The world of a plain, single-process run."""


def init_world(device: str) -> World:
    """Join torchrun's process group (``SINGLE`` when ``WORLD_SIZE`` is 1): NCCL with this rank's
    GPU (``cuda:LOCAL_RANK``) made the current CUDA device when ``device`` (``policy.device``)
    puts the policy on CUDA, gloo on the CPU otherwise."""
    size = world_size_from_environment()
    if size == 1:
        return SINGLE
    import torch
    import torch.distributed as dist

    use_cuda = device != "cpu" and torch.cuda.is_available()
    timeout = timeout_from_environment()
    world = World(rank=int(os.environ["RANK"]), size=size, local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                  timeout_s=timeout)
    if use_cuda:
        torch.cuda.set_device(world.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(seconds=timeout))
    return world


def current_world() -> World:
    """This process's world as torch.distributed knows it: ``SINGLE`` unless a process group was
    joined (``init_world``, or a test's own ``init_process_group``)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return SINGLE
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                 timeout_s=timeout_from_environment())


def close_world(world: World) -> None:
    """Leave the process group (nothing at size 1)."""
    if world.size > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def sum_gradients(world: World, parameters: Sequence[torch.nn.Parameter], extras: Sequence[float],
                  phase: str = "the gradient all-reduce") -> list[float]:
    """Sum the parameters' gradients (a missing one counts as zeros) and ``extras`` (the step's
    loss and metric sums) over ranks in one ``all_reduce``; return the summed extras."""
    import torch

    device = parameters[0].device
    flat = [p.grad.reshape(-1).float() if p.grad is not None else torch.zeros(p.numel(), device=device)
            for p in parameters]  # float32: the extras (loss sums) and a bf16 adapter's gradients alike
    buffer = torch.cat(flat + [torch.tensor(list(extras), dtype=torch.float32, device=device)])
    world.sum_(buffer, phase)
    offset = 0
    for parameter in parameters:
        chunk = buffer[offset: offset + parameter.numel()].view_as(parameter)
        if parameter.grad is None:
            parameter.grad = chunk.clone()
        else:
            parameter.grad.copy_(chunk)
        offset += parameter.numel()
    return buffer[offset:].tolist()
