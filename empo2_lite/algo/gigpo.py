"""GiGPO: GRPO's episode advantage plus a step advantage among actions taken from the same state.

Feng, Xue, Liu and An, "Group-in-Group Policy Optimization for LLM Agent Training" (NeurIPS 2025,
arXiv 2505.10978). For step t of trajectory i::

    A(i, t) = A_episode(i) + omega * A_step(i, t)

``A_episode`` is GRPO's: the trajectory's return normalised within its group, the N rollouts of one
task variation in one iteration (``advantages.grpo_advantages``). ``A_step`` compares the actions of
one *step group*: the steps, of any trajectory of that group and at any time step, that start from
the same anchor state. Each action is scored by its discounted return from that step,
G_t = r_t + gamma r_t+1 + gamma^2 r_t+2 + ..., and normalised within its step group.
``update.gigpo_gamma`` (0.95) and ``update.gigpo_omega`` (1) are the paper's values. GRPO gives every
action of an episode the same advantage; GiGPO tells apart actions of one episode where other
episodes of its group met the same state and did something else.

What the paper leaves to an implementation, and what this one does:

* **The anchor state in ScienceWorld** (``anchor_states``; which commands only look or move and
  where an observation names the place come from the environment's spec, ``env.spec.StateKeyRules``:
  what follows is ScienceWorld's reading, TextWorldExpress's is the same with its own words). ScienceWorld has no state id, and its
  text says too much or too little. The whole history (what the policy is fed) names the path as
  well as the state: two episodes share it only while they have done exactly the same things, so
  after the first step almost every step group holds one action. The last observation alone says
  too little: "You move to the kitchen." or "The door is now open." reads the same whatever doors
  are open, whatever the agent carries and whichever door it opened. The key used here is
  (score so far, the place the agent is in, the observation the step answers, the set of distinct
  transitions so far that changed the world other than by moving), a transition being (executed
  action, the observation it led to). Why each part: the world changes only through actions, and
  an action's effect shows in its pair (the observation alone does not say which door); a *set*
  drops order and repetition, so two changes made in either order (the bedroom door opened, then
  the kitchen door, or the other way round) lead to one state; ScienceWorld names the place on
  arrival ("You move to the kitchen.") and in every look around ("This room is called the
  kitchen."), so the place is read from the text and moves need not be remembered: going to the
  hallway and back to the kitchen leaves the agent where going to the kitchen did; the looking
  commands (``look around``, ``look at``, ``look in``, ``examine``, ``read``, ``inventory``,
  ``task``) change nothing and stay out of the set, so looking around first leaves the agent in the
  state it started in; the observation the step answers is what the agent sees now; the score,
  ScienceWorld's own measure of task progress, separates states whose text is alike (time passes
  in the simulation: water heating on a stove reads the same after one wait or two). Observations are compared with each line's words sorted and the lines sorted
  (``canonical_observation``): ScienceWorld lists a room's objects and a container's contents in
  an order that differs between runs. The time step is not part of the key: as in the paper, a
  state met at different steps is one anchor. Tips shown in a memory rollout are not part of it
  either (they change the prompt, not the world). What this costs: two states share a key when
  their histories hold the same transitions in another order and end in the same place on the same
  observation and score, or when a line reads the same once its words are sorted; one state is
  split when the agent reached it by different actions of the same effect, or tried actions that
  did nothing (opening an open door: "The door is already open." stays in the set).
* **An action alone in its step group** gets ``A_step = 0``: it has nothing to be compared with, and
  GRPO's convention for a lone episode (mean 0, std 1: its advantage is its return) would add its
  raw discounted return, in score points, to an episode term that already counts it. Such an action
  keeps the episode advantage alone. Where identical states are rare, GiGPO is GRPO but for the
  first actions: every episode of a variation starts from the same state, so the first actions of
  a group always form one step group, and their step advantage is a discounted copy of the episode
  advantage. The share of actions in step groups larger than one (``step_group_share``, the metric
  ``diagnostics/step_group_share``) says per iteration how far GiGPO went beyond that: it is never
  below episodes / actions (with groups of two or more), and a share at that floor means that no
  state repeated after the start.
* **The novelty reward stays at the episode level** by default (``step_rewards``): r_t =
  ``reward_scale`` x the score change of step t, so the step term ranks actions by what they did to
  the score. Why not novelty too: an action's novelty is 1/n for the n visits counted per variation
  over the whole run, so the same action from the same state reaching the same next state is paid 1
  by the episode that got there first and less by the others; with "std" normalisation any
  difference within a step group of two becomes +-0.71, while score changes rarely differ within a
  step group, so the step term would be mostly novelty noise (with "mean" aggregation, identical
  last actions would still differ by the episodes' lengths). ``update.gigpo_step_novelty = true``
  adds ``memory.novelty_coef`` x the novelty of the state step t reached (divided by the episode's
  steps under ``memory.novelty_aggregation = "mean"``), so that an episode's rewards add up to its
  return less its start score. ``diagnostics/step_novelty_only_share`` logs, whichever the switch,
  the share of step groups of two or more whose step returns would differ only through novelty
  (equal without it, different with it): the groups the switch would fill with novelty noise (0
  under ``gigpo``, whose novelty coefficient is 0).
* **After an episode's end nothing is counted.** An episode's steps end with its last action
  (completed, failed, step cap or context limit): no padding steps follow, and no value is
  bootstrapped (an ended ScienceWorld episode is terminal; one stopped by the step cap is treated as
  terminal too, as its GRPO return treats it). The return of a last step is its own reward; an
  episode that ended early adds fewer actions to the step groups, and its final state, from which
  no action was taken, is no anchor. Episodes lost to an environment failure are in no group
  (``trajectory.played``).
* **Step groups stay inside a GRPO group**: the same text in two task variations is two states.
* **Normalisation** (``update.gigpo_normalisation``): the paper's F_norm at both levels, reported
  with and without the std. "std" (the default here) divides the centred values by the group's
  unbiased std + 1e-6, as the kit's GRPO does, so the episode term is GRPO's advantage exactly and
  advantages keep the scale the kit's learning rates were chosen for; "mean" only subtracts the
  group's mean (a lone episode keeps its return), so advantages are in return units (verl-agent's
  default, ``mean_norm``). An all-equal step group gives 0 either way.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

import torch

from empo2_lite.algo.advantages import EPSILON, ActionAdvantages, grpo_advantages, group_ids
from empo2_lite.env.spec import StateKeyRules, environment_of
from empo2_lite.trajectory import Trajectory

if TYPE_CHECKING:
    from empo2_lite.config import TrainConfig

_WORD = re.compile(r"[a-z0-9]+")

StepGroup = list[tuple[int, int]]
"""The (trajectory index, step) of every action of one step group."""


def canonical_observation(text: str) -> tuple[tuple[str, ...], ...]:
    """``text`` as ScienceWorld's object order cannot change it: each non-empty line as its sorted
    lower-case words, the lines sorted."""
    lines = (tuple(sorted(_WORD.findall(line.lower()))) for line in text.splitlines())
    return tuple(sorted(line for line in lines if line))


def place(observation: str, before: str, rules: StateKeyRules) -> str:
    """Where the agent is after ``observation``: the place it names on arrival or in a look around
    (``rules.place_pattern``), else where it was ``before`` (a move that failed, any other observation)."""
    named = re.search(rules.place_pattern, observation)
    return named.group(1).strip().lower() if named else before


def kept_in_the_key(action: str, rules: StateKeyRules) -> bool:
    """Whether ``action``'s transition enters the anchor key: anything but the environment's looking
    and moving commands (ScienceWorld: look, examine, read, inventory, task; go, teleport)."""
    words = action.split()
    return bool(words) and words[0].lower() not in (*rules.looking_commands, *rules.moving_commands)


def anchor_states(trajectory: Trajectory) -> list[Hashable]:
    """The anchor-state key of every step of ``trajectory`` (see the module docstring): the score
    before the step, the place, the observation it answers and the set of kept transitions before it,
    observations in ``canonical_observation`` form. The observation that step t answers is the part
    of step t's history after step t-1's history and action (``trajectory.append_history``); the
    first step answers the start observation, its whole history."""
    rules = environment_of(trajectory.task).state_key_rules
    keys: list[Hashable] = []
    transitions: set[tuple[str, tuple]] = set()
    score, where, previous = trajectory.start_score, "", None
    for turn in trajectory.turns:
        answered_from = 0 if previous is None else len(previous.history) + len(f"\n> {previous.action}\n")
        text = turn.history[answered_from:]
        observation, where = canonical_observation(text), place(text, where, rules)
        if previous is not None and kept_in_the_key(previous.action, rules):
            transitions.add((previous.action.strip().lower(), observation))
        keys.append((score, where, observation, frozenset(transitions)))
        score, previous = turn.score, turn
    return keys


def step_rewards(trajectory: Trajectory, config: TrainConfig, with_novelty: bool | None = None) -> list[float]:
    """r_t of every step (see the module docstring): the scaled score change, plus the step's share
    of the novelty term when ``with_novelty`` (by default ``update.gigpo_step_novelty``)."""
    with_novelty = config.update.gigpo_step_novelty if with_novelty is None else with_novelty
    novelty_share = 1.0 if config.memory.novelty_aggregation == "sum" else 1.0 / max(len(trajectory.turns), 1)
    novelty_weight = config.memory.novelty_coef * novelty_share if with_novelty else 0.0
    return [config.reward_scale * turn.reward + novelty_weight * turn.novelty for turn in trajectory.turns]


def discounted_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """G_t = r_t + gamma G_t+1 for every step, G after the last step being 0 (nothing is bootstrapped)."""
    returns, running = [0.0] * len(rewards), 0.0
    for step in reversed(range(len(rewards))):
        running = rewards[step] + gamma * running
        returns[step] = running
    return returns


def step_groups(trajectories: Sequence[Trajectory]) -> list[StepGroup]:
    """Every action of the batch in its step group: same GRPO group, same anchor state."""
    groups: dict[tuple[int, Hashable], StepGroup] = {}
    for index, trajectory in enumerate(trajectories):
        for step, key in enumerate(anchor_states(trajectory)):
            groups.setdefault((trajectory.group_id, key), []).append((index, step))
    return list(groups.values())


def step_group_share(groups: Sequence[StepGroup]) -> float:
    """The share of actions in step groups of two or more (0 when there is no action)."""
    actions = sum(len(group) for group in groups)
    return sum(len(group) for group in groups if len(group) > 1) / actions if actions else 0.0


def novelty_only_share(groups: Sequence[StepGroup], step_returns: Sequence[Sequence[float]],
                       score_returns: Sequence[Sequence[float]]) -> float:
    """The share of step groups of two or more whose members' step returns differ while their
    returns without novelty (``score_returns``) are all equal: groups whose step advantages are
    novelty alone (0 when there is no such group)."""
    compared = [group for group in groups if len(group) > 1]

    def all_equal(returns: Sequence[Sequence[float]], group: StepGroup) -> bool:
        values = [returns[index][step] for index, step in group]
        return max(values) - min(values) <= EPSILON

    novelty_only = [group for group in compared if all_equal(score_returns, group) and not all_equal(step_returns, group)]
    return len(novelty_only) / len(compared) if compared else 0.0


def relative(values: torch.Tensor, normalisation: str) -> torch.Tensor:
    """Values of one group of two or more, centred on their mean and, with "std", divided by their
    unbiased std + 1e-6."""
    centred = values - values.mean()
    return centred / (values.std(unbiased=True) + EPSILON) if normalisation == "std" else centred


def episode_advantages(returns: torch.Tensor, groups: torch.Tensor, normalisation: str) -> torch.Tensor:
    """One advantage per trajectory: GRPO's with "std"; with "mean", each return less its group's
    mean (a lone episode keeps its return, as GRPO's mean 0 gives)."""
    if normalisation == "std":
        return grpo_advantages(returns, groups)
    advantages = returns.float().clone()
    for group in torch.unique(groups):
        members = groups == group
        if int(members.sum()) > 1:
            advantages[members] = relative(advantages[members], normalisation)
    return advantages


def step_advantages(groups: Sequence[StepGroup], step_returns: Sequence[Sequence[float]],
                    normalisation: str) -> list[list[float]]:
    """A_step of every action: its step return normalised within its step group; 0 alone."""
    advantages = [[0.0] * len(returns) for returns in step_returns]
    for group in groups:
        if len(group) > 1:
            values = torch.tensor([step_returns[index][step] for index, step in group], dtype=torch.float32)
            for (index, step), value in zip(group, relative(values, normalisation)):
                advantages[index][step] = float(value)
    return advantages


def gigpo_advantages(trajectories: Sequence[Trajectory], returns: torch.Tensor, rewards: Sequence[Sequence[float]],
                     *, gamma: float, omega: float, normalisation: str,
                     novelty_check: tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]] | None = None
                     ) -> ActionAdvantages:
    """A_episode + omega x A_step for every step of every trajectory, with the batch's
    ``step_group_share`` as a diagnostic; ``rewards`` holds each trajectory's step rewards. Given
    ``novelty_check`` (the step rewards with novelty and without it), ``step_novelty_only_share``
    is logged too."""
    groups = step_groups(trajectories)
    step_returns = [discounted_returns(r, gamma) for r in rewards]
    steps = step_advantages(groups, step_returns, normalisation)
    episodes = episode_advantages(returns, group_ids(trajectories), normalisation)
    diagnostics = {"step_group_share": step_group_share(groups)}
    if novelty_check is not None:
        with_novelty, without = ([discounted_returns(r, gamma) for r in check] for check in novelty_check)
        diagnostics["step_novelty_only_share"] = novelty_only_share(groups, with_novelty, without)
    return ActionAdvantages([[float(episode) + omega * step for step in per_step]
                             for episode, per_step in zip(episodes, steps)], diagnostics)


def gigpo_action_advantages(trajectories: Sequence[Trajectory], returns: torch.Tensor,
                            config: TrainConfig) -> ActionAdvantages:
    """The estimator the algorithm table names "gigpo": ``gigpo_advantages`` with the run's settings."""
    return gigpo_advantages(trajectories, returns, [step_rewards(t, config) for t in trajectories],
                            gamma=config.update.gigpo_gamma, omega=config.update.gigpo_omega,
                            normalisation=config.update.gigpo_normalisation,
                            novelty_check=([step_rewards(t, config, with_novelty=True) for t in trajectories],
                                           [step_rewards(t, config, with_novelty=False) for t in trajectories]))
