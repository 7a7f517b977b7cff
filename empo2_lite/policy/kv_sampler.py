"""Multi-turn sampling that keeps each episode's keys and values, so a step feeds only its new tokens.

Why: in the full-history chat the prompt of step k+1 is the prompt of step k, its response and the
next user turn (append-only). Re-prefilling it at every step costs ~3,000 prompt tokens per
~4-token action late in a 30-step episode; keeping the episode's KV cache costs only the new turn.

What is kept: per episode key, the token ids whose keys/values were computed and those keys/values
(per layer, ``[kv_heads, tokens, head_dim]``, the model's dtype, on ``policy.device``). After a call
that is the prompt plus the response minus its last token (never fed: it is the first new token of
the next call). A prompt that does not extend the kept tokens (a tip block rolled back, a tip
request built from another view) reuses their longest common prefix and recomputes the rest.

Exact batching across episodes of different lengths: each call builds one batch whose row is
``[pad][cached tokens][pad][new tokens]``, the pads masked out (attention mask 0, so holes in the
middle are masked too) and the positions counted over real tokens only (``position_ids`` =
cumsum(mask) - 1), so every real token sees exactly its own episode at its own positions. The
padded cache is a ``transformers.DynamicCache`` whose layers are preallocated for the whole call
(cached width + new tokens + ``max_new_tokens``) and filled in place: the stock layer concatenates
all keys and values at every decoded token, which on a CPU with 30-step episodes copies about a
gigabyte per token for a batch of 8 and cost as much as the model itself. After decoding, each
row's real columns go back to its episode and the pads are dropped.

Decoding is our own loop (no ``generate``), with the same policy and records as
``sample_responses``: softmax(logits / T) with top-p only, greedy at T = 0, log-probs
log softmax(raw logits / T) (T = 1 when greedy), a response ending at an end id, at the first token
containing a newline, or at ``max_new_tokens``. Each row's tokens are drawn from its own seed and
the token's index (``draws.py``), as ``sample_responses`` draws them, so with the same seeds both
sample the same tokens, up to floating-point differences between padded layouts.

Limits: full-attention models only (a sliding-window layer would attend over a different window
once pads sit inside the sequence); tested with the sdpa and eager attention implementations.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, get_layer_types_and_kwargs

from empo2_lite.policy.draws import choose_tokens, row_seeds
from empo2_lite.policy.loading import Policy, causal_lm
from empo2_lite.policy.sampling import (
    SampledResponse,
    _newline_token_ids,
    cut_response,
    end_token_ids,
    left_pad,
)


@dataclass
class _EpisodeCache:
    """What the model has already processed for one episode."""

    tokens: list[int] = field(default_factory=list)
    """Ids whose keys/values are held, in order."""
    keys: list[torch.Tensor] = field(default_factory=list)
    """Per layer, ``[kv_heads, len(tokens), head_dim]``; empty when nothing is held."""
    values: list[torch.Tensor] = field(default_factory=list)
    peak_bytes: int = 0
    """Largest size its keys and values have had."""

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))

    def keep_first(self, count: int) -> None:
        """Drop every held token after the first ``count`` (nothing held when ``count`` is 0)."""
        self.tokens = self.tokens[:count]
        if count == 0:
            self.keys, self.values = [], []
        else:
            self.keys = [k[:, :count] for k in self.keys]
            self.values = [v[:, :count] for v in self.values]


@dataclass
class _Decoded:
    """Raw output of one batched decode, before it is split into responses and episode caches."""

    tokens: torch.Tensor
    """``[batch, steps]`` sampled ids (pad after a row stopped)."""
    logprobs: torch.Tensor | None
    """``[batch, steps]`` log-probs of ``tokens``, when asked for."""
    cache: DynamicCache
    mask: torch.Tensor
    """``[batch, cache columns]`` 1 on real tokens of the final cache."""


class KVCacheSampler:
    """Samples one response per episode, feeding each episode only the tokens it has not yet seen.

    The interface is deliberately small (``sample``, ``release``, ``stats``) so that another
    backend (an engine with prefix caching) can stand in for it.
    """

    def __init__(self, policy: Policy, *, temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 32) -> None:
        _require_full_attention(policy.model)
        self.policy = policy
        self.temperature, self.top_p, self.max_new_tokens = temperature, top_p, max_new_tokens
        self.end_ids = end_token_ids(policy.tokenizer, policy.model)
        self.stop_set = {*_newline_token_ids(policy.tokenizer), *self.end_ids}
        self.stop_ids = torch.tensor(sorted(self.stop_set), device=policy.device)
        self._episodes: dict[Hashable, _EpisodeCache] = {}
        self.last_computed: dict[Hashable, int] = {}
        """Prompt tokens of each episode the model computed in the last ``sample`` call."""
        self.stats = {"prompt_tokens_computed": 0, "prompt_tokens_total": 0, "generated_tokens": 0, "peak_cache_bytes": 0,
                      "peak_buffer_bytes": 0}
        """Counters over every call; ``peak_cache_bytes`` is the largest cache any one episode has held,
        ``peak_buffer_bytes`` the most bytes of keys and values alive at once (the batch cache and
        the episodes' own copies, at the end of a call)."""

    def __contains__(self, key: Hashable) -> bool:
        return key in self._episodes

    def cached_tokens(self, key: Hashable) -> list[int]:
        """The ids whose keys/values are held for ``key`` (KeyError when none)."""
        return list(self._episodes[key].tokens)

    def peak_cache_bytes(self, key: Hashable) -> int:
        """The largest size ``key``'s keys and values have had (KeyError when released or unknown)."""
        return self._episodes[key].peak_bytes

    def release(self, key: Hashable) -> int:
        """Free ``key``'s cache (an episode ended); return its peak size in bytes.

        A key never sampled (an episode that ended before its first step) or already released
        gives 0, so a caller can release every ending episode without tracking which were sampled.
        """
        episode = self._episodes.pop(key, None)
        return episode.peak_bytes if episode is not None else 0

    def weights_changed(self) -> None:
        """Nothing to refresh: the caches are episodes' keys and values, freed when their wave ends
        (before any update), and decoding reads the live LoRA layers."""

    @torch.no_grad()
    def sample(self, keys: list[Hashable], prompts: list[list[int]], with_logprobs: bool = True, *,
               seeds: list[int] | None = None, temperature: float | None = None, top_p: float | None = None,
               max_new_tokens: int | None = None) -> list[SampledResponse]:
        """One response per episode; ``prompts[i]`` is the FULL prompt of episode ``keys[i]`` at this step,
        its tokens drawn from ``seeds[i]`` (``draws.row_seeds``: from torch's generator when None).

        The keyword overrides (defaults: the constructor's) let a caller extend an episode
        differently, e.g. write a tip from its cache at another temperature before releasing it.
        """
        check_batch(keys, prompts)
        if not keys:
            return []
        episodes, suffixes = self._new_tokens(keys, prompts)
        model = self.policy.model
        was_training = model.training
        model.eval()
        try:
            decoded = self._decode(episodes, suffixes, with_logprobs, row_seeds(seeds, len(keys), self.policy.device),
                                   self.temperature if temperature is None else temperature,
                                   self.top_p if top_p is None else top_p,
                                   self.max_new_tokens if max_new_tokens is None else max_new_tokens)
        finally:
            model.train(was_training)
        responses = [self._response(decoded, row) for row in range(len(keys))]
        for row, (episode, prompt, response) in enumerate(zip(episodes, prompts, responses)):
            self._store(episode, prompt + response.token_ids[:-1], decoded, row)
        alive = sum(t.numel() * t.element_size() for layer in decoded.cache.layers
                    for t in (layer._key_buffer, layer._value_buffer)) + sum(e.nbytes() for e in self._episodes.values())
        self.stats["peak_buffer_bytes"] = max(self.stats["peak_buffer_bytes"], alive)
        self.stats["generated_tokens"] += sum(len(r.token_ids) for r in responses)
        return responses

    @torch.no_grad()
    def sample_candidates(self, keys: list[Hashable], prompts: list[list[int]], count: int, *, seeds: list[list[int]],
                          with_logprobs: bool = True) -> list[list[SampledResponse]]:
        """``count`` responses per episode from one prefill (Retrospex's sampled candidates): each
        prompt's new tokens are fed once for all episodes, then every episode's keys and values are
        copied to ``count`` rows that decode together, candidate ``j`` of episode ``i`` drawn from
        ``seeds[i][j]`` (the same tokens ``sample`` would draw from that seed). The episode keeps its
        prompt's keys and values but none of the candidates' (they diverge): the next prompt, which
        holds the one played, feeds it with its turn."""
        if len(seeds) != len(keys) or any(len(row) != count for row in seeds):
            raise ValueError(f"seeds: one row of {count} per episode is needed")
        return self._from_one_prefill(keys, prompts, lambda cache, mask, logits, row: self._candidates(
            cache, mask, logits, row, seeds[row], with_logprobs))

    @torch.no_grad()
    def beam_candidates(self, keys: list[Hashable], prompts: list[list[int]], width: int) -> list[list[SampledResponse]]:
        """The ``width`` best responses per episode by a beam search (Retrospex's candidates as the
        original draws them), from one prefill as ``sample_candidates``: distinct by construction,
        best first, each with its tokens' log-probs under the model's own distribution (T = 1; the
        engine's temperature and top-p do not apply, and no seed is drawn from)."""
        if width < 1:
            raise ValueError(f"width: {width} beams; at least 1 is needed")
        return self._from_one_prefill(keys, prompts, lambda cache, mask, logits, row: self._beams(
            cache, mask, logits, row, width))

    def _from_one_prefill(self, keys: list[Hashable], prompts: list[list[int]],
                          decode_row: Callable[[DynamicCache, torch.Tensor, torch.Tensor, int], list[SampledResponse]],
                          ) -> list[list[SampledResponse]]:
        """Feed every episode's new tokens in one forward, keep each episode's prompt cache, then
        ``decode_row(cache, mask, logits, row)`` each episode's candidates from its row."""
        check_batch(keys, prompts)
        if not keys:
            return []
        episodes, suffixes = self._new_tokens(keys, prompts)
        device, pad_id = self.policy.device, self.policy.tokenizer.pad_token_id
        model = self.policy.model
        was_training = model.training
        model.eval()
        try:
            new_ids, new_mask = left_pad(suffixes, pad_id, device)
            cache, cached_mask = _padded_cache(episodes, device, extra_columns=new_ids.shape[1] + self.max_new_tokens)
            for episode in episodes:
                episode.keep_first(0)
            mask = torch.cat([cached_mask, new_mask], dim=1)
            logits = self._last_logits(new_ids, mask, cache)
            prefilled = _Decoded(new_ids, None, cache, mask)
            for row, (episode, prompt) in enumerate(zip(episodes, prompts)):
                self._store(episode, list(prompt), prefilled, row)
            drawn = [decode_row(cache, mask, logits, row) for row in range(len(keys))]
        finally:
            model.train(was_training)
        self.stats["generated_tokens"] += sum(len(r.token_ids) for row in drawn for r in row)
        return drawn

    def _beams(self, cache: DynamicCache, mask: torch.Tensor, logits: torch.Tensor, row: int,
               width: int) -> list[SampledResponse]:
        """Beam search of ``width`` from row ``row`` of the prefilled ``cache`` (left as it is).

        Every step extends each live beam by each token, ranks the extensions by the sum of their
        log-probs and walks the best ``2 * width`` in order: one that ends at a stop token (or at
        ``max_new_tokens``) is finished, the others live on until ``width`` are found. Finished
        responses are ranked by their mean token log-prob (transformers' length penalty 1.0), and
        the search ends once ``width`` are finished and no live beam's mean beats the worst of them
        (transformers' default stopping rule, a heuristic: a mean can still rise). The live beams'
        keys and values are reordered in place of copying, as a beam search does."""
        rows = torch.zeros(1, dtype=torch.long, device=logits.device) + row
        beams = DynamicCache()
        beams.layers = [_PreallocatedLayer(layer._capacity, layer._key_buffer[rows], layer._value_buffer[rows],
                                           layer._filled) for layer in cache.layers]
        fed = mask[rows]
        log_probs = torch.log_softmax(logits[rows].float(), dim=-1)
        totals = torch.zeros(1, device=logits.device)
        paths: list[tuple[list[int], list[float]]] = [([], [])]
        finished: list[tuple[float, list[int], list[float]]] = []
        for step in range(self.max_new_tokens):
            vocabulary = log_probs.shape[-1]
            scores = (totals[:, None] + log_probs).view(-1)
            best = torch.topk(scores, min(2 * width, scores.numel()))
            live: list[tuple[int, int, float]] = []
            for score, index in zip(best.values.tolist(), best.indices.tolist()):
                parent, token = divmod(index, vocabulary)
                ids, token_logprobs = paths[parent]
                path = (ids + [token], token_logprobs + [log_probs[parent, token].item()])
                if token in self.stop_set or step + 1 == self.max_new_tokens:
                    finished.append((score / len(path[0]), *path))
                else:
                    live.append((parent, token, score))
                    paths.append(path)
                if len(live) == width:
                    break
            paths = paths[len(paths) - len(live):]
            finished = sorted(finished, key=lambda done: -done[0])[:width]
            if not live or (len(finished) == width and max(score for *_, score in live) / (step + 1) < finished[-1][0]):
                break
            parents = torch.tensor([parent for parent, _, _ in live], device=logits.device)
            for layer in beams.layers:
                layer._adopt(layer._key_buffer[parents], layer._value_buffer[parents])
            fed = torch.cat([fed[parents], torch.ones_like(fed[parents, :1])], dim=1)
            tokens = torch.tensor([[token] for _, token, _ in live], device=logits.device)
            log_probs = torch.log_softmax(self._last_logits(tokens, fed, beams), dim=-1)
            totals = torch.tensor([score for *_, score in live], device=logits.device)
        tokenizer = self.policy.tokenizer
        return [cut_response(tokenizer, ids, torch.tensor(token_logprobs), self.end_ids, self.stop_set)
                for _, ids, token_logprobs in finished]

    def _candidates(self, cache: DynamicCache, mask: torch.Tensor, logits: torch.Tensor, row: int, seeds: list[int],
                    with_logprobs: bool) -> list[SampledResponse]:
        """Decode ``len(seeds)`` responses from row ``row`` of the prefilled ``cache`` (left as it is).

        A candidate that has stopped is dropped from the batch at the next token, so the rest do not
        carry it: untrained candidates often run to ``max_new_tokens`` while most stop after a few
        words, and on a CPU every row of a decoded token costs its share of the forward."""
        rows = torch.full((len(seeds),), row, dtype=torch.long, device=logits.device)
        copy = DynamicCache()
        copy.layers = [_PreallocatedLayer(layer._capacity, layer._key_buffer[rows], layer._value_buffer[rows], layer._filled)
                       for layer in cache.layers]
        fed = [mask[rows]]
        decoding = [torch.arange(len(seeds), device=logits.device)]  # the rows the copy still holds

        def feed(token: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
            fed[0] = torch.cat([fed[0], live[:, None].long()], dim=1)
            still = live[decoding[0]]
            if not still.all():  # rows that stopped leave the copy: a candidate costs its own tokens only
                for layer in copy.layers:
                    layer._adopt(layer._key_buffer[still], layer._value_buffer[still])
                decoding[0] = decoding[0][still]
            rows_left = decoding[0]
            computed = self._last_logits(token[rows_left][:, None], fed[0][rows_left], copy)
            full = computed.new_zeros((len(live), computed.shape[-1]))  # a stopped row's draws become pad
            full[rows_left] = computed
            return full

        tokens, logprobs = decode_tokens(logits[rows], feed, seeds=row_seeds(seeds, len(seeds), logits.device),
                                         temperature=self.temperature, top_p=self.top_p,
                                         max_new_tokens=self.max_new_tokens, stop_ids=self.stop_ids,
                                         pad_id=self.policy.tokenizer.pad_token_id, with_logprobs=with_logprobs)
        decoded = _Decoded(tokens, logprobs, copy, fed[0])
        return [self._response(decoded, j) for j in range(len(seeds))]

    def _new_tokens(self, keys: list[Hashable], prompts: list[list[int]]) -> tuple[list[_EpisodeCache], list[list[int]]]:
        """Each episode's cache cut to what its prompt shares with it (the prompt's last token always
        left to feed), and the tokens still to feed; counted in ``stats`` and ``last_computed``."""
        episodes = [self._episodes.setdefault(key, _EpisodeCache()) for key in keys]
        for episode, prompt in zip(episodes, prompts):
            episode.keep_first(min(common_prefix(episode.tokens, prompt), len(prompt) - 1))
        suffixes = [prompt[len(episode.tokens):] for episode, prompt in zip(episodes, prompts)]
        self.stats["prompt_tokens_total"] += sum(map(len, prompts))
        self.stats["prompt_tokens_computed"] += sum(map(len, suffixes))
        self.last_computed = {key: len(suffix) for key, suffix in zip(keys, suffixes)}
        self.policy.for_sampling()
        return episodes, suffixes

    def _decode(self, episodes: list[_EpisodeCache], suffixes: list[list[int]], with_logprobs: bool,
                seeds: torch.Tensor, temperature: float, top_p: float, max_new_tokens: int) -> _Decoded:
        """Prefill every row's new tokens in one forward, then sample token by token.

        The episodes' own tensors are emptied once copied into the batch (the batch holds them;
        they come back in ``_store``), so an episode is never held twice during a call.
        """
        device, pad_id = self.policy.device, self.policy.tokenizer.pad_token_id
        new_ids, new_mask = left_pad(suffixes, pad_id, device)
        cache, cached_mask = _padded_cache(episodes, device, extra_columns=new_ids.shape[1] + max_new_tokens)
        for episode in episodes:
            episode.keep_first(0)
        mask = torch.cat([cached_mask, new_mask], dim=1)
        fed = [mask]  # the mask so far, extended by ``feed``

        def feed(token: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
            fed[0] = torch.cat([fed[0], live[:, None].long()], dim=1)  # a stopped row's column is a masked pad
            return self._last_logits(token[:, None], fed[0], cache)

        tokens, logprobs = decode_tokens(self._last_logits(new_ids, mask, cache), feed, seeds=seeds,
                                         temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                         stop_ids=self.stop_ids, pad_id=pad_id, with_logprobs=with_logprobs)
        return _Decoded(tokens, logprobs, cache, fed[0])

    def _last_logits(self, input_ids: torch.Tensor, mask: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
        """Float logits at the last column after feeding ``input_ids`` (the newest columns of ``mask``)."""
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1]:]
        out = self.policy.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                                use_cache=True, logits_to_keep=1)
        return out.logits[:, -1].float()

    def _response(self, decoded: _Decoded, row: int) -> SampledResponse:
        """Row ``row``'s tokens up to and including its stop token, labelled like ``sample_responses``."""
        return cut_response(self.policy.tokenizer, decoded.tokens[row].tolist(),
                            decoded.logprobs[row] if decoded.logprobs is not None else None, self.end_ids, self.stop_set)

    def _store(self, episode: _EpisodeCache, tokens: list[int], decoded: _Decoded, row: int) -> None:
        """Keep row ``row``'s real columns of the batch cache as the episode's cache of ``tokens``."""
        columns = decoded.mask[row].nonzero().squeeze(-1)
        if len(columns) != len(tokens):
            raise RuntimeError(f"bug: {len(columns)} real cache columns for {len(tokens)} tokens")
        episode.tokens = tokens
        episode.keys = [layer.keys[row][:, columns] for layer in decoded.cache.layers]
        episode.values = [layer.values[row][:, columns] for layer in decoded.cache.layers]
        episode.peak_bytes = max(episode.peak_bytes, episode.nbytes())
        self.stats["peak_cache_bytes"] = max(self.stats["peak_cache_bytes"], episode.peak_bytes)


def full_attention_problem(model) -> str | None:
    """Why ``model`` is not a full-attention model (None when it is; see module docstring)."""
    config = causal_lm(model).config.get_text_config(decoder=True)
    layer_types, _ = get_layer_types_and_kwargs(config)
    other = sorted(set(layer_types) - {"full_attention"})
    return f"the cache supports full-attention models only; this one has {other} layers" if other else None


def _require_full_attention(model) -> None:
    """Refuse models with sliding-window or other non-full attention layers."""
    problem = full_attention_problem(model)
    if problem:
        raise NotImplementedError(f"KVCacheSampler: {problem}")


def check_batch(keys: list[Hashable], prompts: list[list[int]]) -> None:
    if len(keys) != len(prompts):
        raise ValueError(f"{len(keys)} keys for {len(prompts)} prompts")
    if len(set(keys)) != len(keys):
        raise ValueError("each episode key may appear once per call")
    if any(not prompt for prompt in prompts):
        raise ValueError("every prompt needs at least one token")


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of ``a`` and ``b``."""
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


class _PreallocatedLayer(DynamicLayer):
    """A full-attention cache layer over a buffer sized for the whole call, written in place.

    ``keys``/``values`` are views of the filled columns, so everything that reads a DynamicLayer
    (sequence length, mask sizes) sees an ordinary layer. Made either from padded buffers already
    holding ``filled`` columns, or empty (the first call of every episode in the batch), when the
    first update sizes the buffers to ``capacity`` columns.
    """

    def __init__(self, capacity: int, keys: torch.Tensor | None = None, values: torch.Tensor | None = None,
                 filled: int = 0) -> None:
        super().__init__()
        self._capacity, self._filled = capacity, filled
        if keys is not None:
            self._adopt(keys, values)

    def _adopt(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self._key_buffer, self._value_buffer = keys, values
        self.dtype, self.device = keys.dtype, keys.device
        self.keys, self.values = keys[:, :, :self._filled], values[:, :, :self._filled]
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        batch, heads, _, dim = key_states.shape
        self._adopt(key_states.new_zeros((batch, heads, self._capacity, dim)),
                    value_states.new_zeros((batch, heads, self._capacity, value_states.shape[-1])))

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self._filled + key_states.shape[-2]
        if end > self._capacity:
            raise RuntimeError(f"bug: {end} cache columns for a buffer of {self._capacity}")
        self._key_buffer[:, :, self._filled:end] = key_states
        self._value_buffer[:, :, self._filled:end] = value_states
        self._filled = end
        self.keys, self.values = self._key_buffer[:, :, :end], self._value_buffer[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self._filled


def _padded_cache(episodes: list[_EpisodeCache], device, extra_columns: int) -> tuple[DynamicCache, torch.Tensor]:
    """A batch cache of the episodes' keys/values, each row left-padded, room for ``extra_columns``
    more, and the 0/1 mask of its filled columns."""
    lengths = [len(e.tokens) for e in episodes]
    width = max(lengths)
    mask = torch.zeros((len(episodes), width), dtype=torch.long, device=device)
    for row, length in enumerate(lengths):
        mask[row, width - length:] = 1
    cache = DynamicCache()
    if width == 0:
        cache.layer_class_to_replicate = lambda: _PreallocatedLayer(extra_columns)
        return cache, mask
    layers = len(next(e.keys for e in episodes if e.keys))
    cache.layers = [_PreallocatedLayer(width + extra_columns,
                                       _left_padded([e.keys[i] if e.keys else None for e in episodes], width, extra_columns),
                                       _left_padded([e.values[i] if e.values else None for e in episodes], width, extra_columns),
                                       width)
                    for i in range(layers)]
    return cache, mask


def _left_padded(rows: list[torch.Tensor | None], width: int, extra_columns: int) -> torch.Tensor:
    """``[batch, heads, width + extra_columns, dim]`` with each row's ``[heads, tokens, dim]`` ending at
    column ``width`` (the rest zeros).

    Zeros, not garbage: masked columns get no attention weight, but a NaN there would still poison
    the weighted sum.
    """
    sample = next(t for t in rows if t is not None)
    out = sample.new_zeros((len(rows), sample.shape[0], width + extra_columns, sample.shape[2]))
    for row, tensor in enumerate(rows):
        if tensor is not None:
            out[row, :, width - tensor.shape[1]:width] = tensor
    return out


def decode_tokens(logits: torch.Tensor, feed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *,
                  seeds: torch.Tensor, temperature: float, top_p: float, max_new_tokens: int, stop_ids: torch.Tensor,
                  pad_id: int, with_logprobs: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sample token by token from the prefill's ``logits``: row ``i``'s token ``t`` is the draw of
    (``seeds[i]``, t) (``draws.choose_tokens``), a stopped row gets ``pad_id``, and ``feed(token,
    live)`` feeds every row's token (``live``: rows still decoding) and returns the next logits.
    Stops after ``max_new_tokens`` or once every row has stopped. Both cached samplers decode
    with it; they differ only in how a token is fed. Returns ``[rows, steps]`` tokens and their
    log-probs (``token_logprob``) when asked for."""
    live = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
    tokens, logprobs = [], []
    for step in range(max_new_tokens):
        token = torch.where(live, choose_tokens(logits, temperature, top_p, seeds, step), pad_id)
        tokens.append(token)
        if with_logprobs:
            logprobs.append(token_logprob(logits, token, temperature))
        live &= ~torch.isin(token, stop_ids)
        if step + 1 == max_new_tokens or not live.any():
            break
        logits = feed(token, live)
    return torch.stack(tokens, 1), torch.stack(logprobs, 1) if with_logprobs else None


def token_logprob(logits: torch.Tensor, token: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(raw logits / T) of ``token`` per row (T = 1 when greedy), as ``sample_responses`` records."""
    scale = temperature if temperature > 0 else 1.0
    return torch.log_softmax(logits / scale, dim=-1).gather(-1, token[:, None]).squeeze(-1)
