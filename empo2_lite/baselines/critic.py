"""The Retrospex critic: implicit Q-learning (IQL) over text states and actions, trained offline.

Retrospex (Xiang et al., 2024) re-ranks an LLM actor's candidate actions with a critic trained by
IQL (Kostrikov et al., 2022) on played trajectories. IQL never queries actions outside the data:

* V(s) regresses on the target Q(s, a) of the data's actions by expectile regression (tau 0.7: an
  upper expectile, so V approaches the value of the better actions seen in s);
* Q(s, a) regresses on r + gamma * V(s') (no bootstrap after a terminal step);
* the target Q network follows Q by an exponential moving average (rate 0.005).

The encoders: the original embeds the task, observation and look/inventory with small GRUs over a
sentencepiece vocabulary. Here each network embeds a text as the mean of learned embeddings of its
hashed words and word pairs (``HashedText``: an ``EmbeddingBag``), for three reasons: it trains in
minutes on a CPU, it needs no tokenizer or policy model (a critic is a few MB and loads without
transformers), and ScienceWorld's states and commands are short phrases whose words carry most of
their meaning. The policy model's frozen hidden states would be the other choice; they cost a
forward pass of the policy per transition and per candidate. One Q network, not IQL's twin Qs
(the data are small and the re-ranking reads Q only): docs/deviations.md.

A critic folder (``save``/``load``): ``critic.safetensors`` (Q and V weights), ``critic.json``
(settings, task, what it was trained on, the loss curve, minutes).
"""

from __future__ import annotations

import copy
import functools
import json
import re
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from empo2_lite.baselines import CriticSettings
from empo2_lite.transitions import Transition

CRITIC_WEIGHTS, CRITIC_RECORD = "critic.safetensors", "critic.json"
_WORD = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=65536)
def text_features(text: str, buckets: int) -> tuple[int, ...]:
    """Hash buckets of the lower-case words of ``text`` and of its adjacent word pairs (stable
    across processes: CRC-32, not Python's salted ``hash``); one bucket for an empty text. Cached:
    training reads the same few hundred texts thousands of times."""
    words = _WORD.findall(text.lower())
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    return tuple(zlib.crc32(gram.encode()) % buckets for gram in grams) or (0,)


class HashedText(nn.Module):
    """A text as the mean of learned embeddings of its hashed words and word pairs."""

    def __init__(self, buckets: int, dim: int) -> None:
        super().__init__()
        self.buckets = buckets
        self.bag = nn.EmbeddingBag(buckets, dim, mode="mean")

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        features = [text_features(text, self.buckets) for text in texts]
        offsets = torch.tensor([0] + [len(f) for f in features[:-1]]).cumsum(0)
        return self.bag(torch.tensor([i for f in features for i in f]), offsets)


class QNetwork(nn.Module):
    """Q(s, a) from the state's and the action's encodings and their product."""

    def __init__(self, settings: CriticSettings) -> None:
        super().__init__()
        dim = settings.embedding_dim
        self.state, self.action = HashedText(settings.buckets, dim), HashedText(settings.buckets, dim)
        self.head = nn.Sequential(nn.Linear(3 * dim, settings.hidden), nn.ReLU(), nn.Linear(settings.hidden, 1))

    def forward(self, states: Sequence[str], actions: Sequence[str]) -> torch.Tensor:
        s, a = self.state(states), self.action(actions)
        return self.head(torch.cat([s, a, s * a], dim=-1)).squeeze(-1)


class VNetwork(nn.Module):
    """V(s) from the state's encoding."""

    def __init__(self, settings: CriticSettings) -> None:
        super().__init__()
        self.state = HashedText(settings.buckets, settings.embedding_dim)
        self.head = nn.Sequential(nn.Linear(settings.embedding_dim, settings.hidden), nn.ReLU(),
                                  nn.Linear(settings.hidden, 1))

    def forward(self, states: Sequence[str]) -> torch.Tensor:
        return self.head(self.state(states)).squeeze(-1)


def expectile_loss(difference: torch.Tensor, expectile: float) -> torch.Tensor:
    """Mean of |tau - 1(u < 0)| * u^2 over u = target - prediction: under-estimates weigh tau,
    over-estimates 1 - tau."""
    weight = torch.where(difference < 0, 1 - expectile, expectile)
    return (weight * difference.pow(2)).mean()


class IQLCritic:
    """Q, V and the target Q of one critic, with the IQL update. ``q`` and ``v`` replace the
    hashed-text networks (a test passes tables, whose fixed point can be worked out by hand)."""

    def __init__(self, settings: CriticSettings, q: nn.Module | None = None, v: nn.Module | None = None) -> None:
        settings.validate()
        self.settings = settings
        torch.manual_seed(settings.seed)
        self.q, self.v = q or QNetwork(settings), v or VNetwork(settings)
        self.target_q = copy.deepcopy(self.q).requires_grad_(False)
        self.optimizer = torch.optim.Adam([*self.q.parameters(), *self.v.parameters()], lr=settings.learning_rate)

    def update(self, batch: Sequence[Transition]) -> dict[str, float]:
        """One IQL step on ``batch``: V by expectile regression on the target Q, Q on
        r + gamma * V(s'), then the target's moving average."""
        settings = self.settings
        states, actions = [t.state for t in batch], [t.action for t in batch]
        rewards = torch.tensor([t.reward / settings.reward_scale for t in batch])
        terminal = torch.tensor([t.terminal for t in batch], dtype=torch.float32)
        with torch.no_grad():
            target_q = self.target_q(states, actions)
            next_v = self.v([t.next_state for t in batch])
        value_loss = expectile_loss(target_q - self.v(states), settings.expectile)
        q_target = rewards + settings.discount * (1 - terminal) * next_v
        q_loss = (self.q(states, actions) - q_target).pow(2).mean()
        self.optimizer.zero_grad()
        (value_loss + q_loss).backward()
        self.optimizer.step()
        with torch.no_grad():
            for target, live in zip(self.target_q.parameters(), self.q.parameters()):
                target.lerp_(live, settings.target_rate)
        return {"q_loss": q_loss.item(), "v_loss": value_loss.item()}

    @torch.no_grad()
    def q_values(self, state: str, actions: Sequence[str]) -> list[float]:
        """Q(state, a) of each action, in points (the reward scale undone)."""
        return (self.q([state] * len(actions), list(actions)) * self.settings.reward_scale).tolist()

    @torch.no_grad()
    def value(self, states: Sequence[str]) -> list[float]:
        """V of each state, in points."""
        return (self.v(list(states)) * self.settings.reward_scale).tolist()


def train_critic(data: Sequence[Transition], settings: CriticSettings, *, progress: bool = True,
                 log_every: int = 100, clock: Callable[[], float] = time.perf_counter) -> tuple[IQLCritic, list[dict]]:
    """An IQL critic trained on ``data`` for ``settings.max_updates`` updates or ``max_minutes``,
    whichever ends first, with a progress bar; returns it and its curve (the mean losses of every
    ``log_every`` updates, the last stretch included)."""
    from empo2_lite.progress import progress_bar

    if not data:
        raise ValueError("no transitions to train the critic on")
    critic = IQLCritic(settings)
    generator = torch.Generator().manual_seed(settings.seed)
    curve: list[dict] = []
    window: list[dict[str, float]] = []
    began = clock()
    bar = progress_bar(total=settings.max_updates, desc="critic (IQL)", unit="update", disable=not progress)
    for update in range(1, settings.max_updates + 1):
        picks = torch.randint(len(data), (min(settings.batch_size, len(data)),), generator=generator).tolist()
        window.append(critic.update([data[i] for i in picks]))
        bar.update(1)
        out_of_time = (clock() - began) / 60 >= settings.max_minutes
        if update % log_every == 0 or update == settings.max_updates or out_of_time:
            curve.append({"update": update, "minutes": (clock() - began) / 60,
                          **{key: sum(row[key] for row in window) / len(window) for key in window[0]}})
            window = []
            bar.set_postfix(q_loss=f"{curve[-1]['q_loss']:.4f}")
        if out_of_time:
            break
    bar.close()
    return critic, curve


def save_critic(critic: IQLCritic, folder: Path, record: dict[str, Any]) -> None:
    """Write the critic's weights and ``record`` (with its settings) into ``folder``, each file
    atomically, the record last (a folder with a record is complete)."""
    from safetensors.torch import save_file

    from empo2_lite.runs import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    weights = {f"q.{k}": v for k, v in critic.q.state_dict().items()}
    weights.update({f"v.{k}": v for k, v in critic.v.state_dict().items()})
    staging = folder / f".{CRITIC_WEIGHTS}.partial"
    save_file({k: v.contiguous() for k, v in weights.items()}, str(staging))
    staging.replace(folder / CRITIC_WEIGHTS)
    write_atomic(folder / CRITIC_RECORD, json.dumps({**record, "settings": critic.settings.row()}, indent=1))


def read_critic_record(folder: Path) -> dict[str, Any] | None:
    """A critic folder's record, or None when ``folder`` holds no finished critic."""
    path = folder / CRITIC_RECORD
    return json.loads(path.read_text()) if path.exists() and (folder / CRITIC_WEIGHTS).exists() else None


def load_critic(folder: Path) -> tuple[IQLCritic, dict[str, Any]]:
    """The critic saved in ``folder`` and its record."""
    from safetensors.torch import load_file

    record = read_critic_record(folder)
    if record is None:
        raise FileNotFoundError(f"--critic: {folder} holds no finished critic (make one with `python -m empo2_lite critic`)")
    critic = IQLCritic(CriticSettings(**record["settings"]))
    weights = load_file(str(folder / CRITIC_WEIGHTS))
    critic.q.load_state_dict({k[2:]: v for k, v in weights.items() if k.startswith("q.")})
    critic.v.load_state_dict({k[2:]: v for k, v in weights.items() if k.startswith("v.")})
    critic.target_q.load_state_dict(critic.q.state_dict())
    return critic, record
