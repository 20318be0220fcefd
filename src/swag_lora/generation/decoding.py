"""Decoding with a posterior: one answer per prompt from the averaged next-token distribution of
S members (*ensemble decoding*), each member's own answer (*sample-then-decode*), and the
per-token uncertainty of every generated token.

Ensemble decoding keeps one KV cache per member. The prompts of a batch (left-padded, with
attention masks and positions counted from each prompt's first real token) run once per member;
then at every step each member, entered in turn (its weights written, its mode set), runs one
forward step on its own cache, the S next-token distributions are averaged in float64
(log-mean-exp), the token is chosen from the average (greedy, or sampled at a temperature from a
seeded generator) and fed to every member's cache. No prompt is recomputed after the first pass.
A sequence stops at an end-of-sequence token, at a token that writes a newline, or after
``max_new_tokens``; the batch stops when all have.

For every generated token (the stopping token included) the record holds log p̄(token), the
entropy of p̄ (total uncertainty), the members' mean entropy (aleatoric) and each member's log
p_s(token); their difference total − aleatoric is the mutual information (epistemic). Entropies
are in nats.

Sample-then-decode runs :func:`ensemble_decode` with each member alone, held for the whole decode
(as S separate greedy decodes). MC dropout members are re-seeded each time they are entered, so in
ensemble decoding a member uses one dropout mask pattern for every step's token, while decoding
alone its random stream runs on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..bayes.predictive import Member, length_sorted_batches
from ..errors import InvalidSettingError
from ..lm.encoding import pad_sequences

__all__ = ["Decoded", "DecodingOptions", "StopTokens", "ensemble_decode", "member_decode"]


@dataclass(frozen=True)
class DecodingOptions:
    """How answers are decoded: at most ``max_new_tokens`` tokens, greedily or (``do_sample``)
    sampled at ``temperature`` from a generator seeded by ``seed``; ``batch_size`` prompts at once."""

    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise InvalidSettingError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise InvalidSettingError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.temperature > 0:
            raise InvalidSettingError(f"temperature must be positive, got {self.temperature}")


@dataclass(frozen=True)
class StopTokens:
    """Token ids that end an answer: end-of-sequence ids and ids whose text holds a newline."""

    eos: frozenset[int]
    newline: frozenset[int] = frozenset()

    @classmethod
    def of(cls, tokenizer, newline: bool = True) -> StopTokens:
        """The tokenizer's EOS (and pad, if it is an EOS-like end) ids and, with ``newline``, every
        id whose decoded text contains ``"\\n"``."""
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        lines = set()
        if newline:
            lines = {i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i])} - eos
        return cls(frozenset(eos), frozenset(lines))

    def reason(self, token: int) -> str | None:
        if token in self.eos:
            return "eos"
        if token in self.newline:
            return "newline"
        return None


@dataclass
class Decoded:
    """One generated answer: its token ids (the stopping token included), why it stopped (``eos``,
    ``newline`` or ``length``), and per token: ``log_prob`` log p̄(token), ``total`` H[p̄],
    ``aleatoric`` mean_s H[p_s], ``member_log_probs`` [S, T] log p_s(token)."""

    tokens: list[int]
    stop: str
    log_prob: np.ndarray
    total: np.ndarray
    aleatoric: np.ndarray
    member_log_probs: np.ndarray

    @property
    def epistemic(self) -> np.ndarray:
        """Mutual information per token: H[p̄] − mean_s H[p_s] (≥ 0 up to rounding)."""
        return self.total - self.aleatoric


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits[:, -1].double(), dim=-1)


class _Steps:
    """Per-step records of a batch, sliced per row at the end."""

    def __init__(self):
        self.tokens, self.log_prob, self.total, self.aleatoric, self.members = [], [], [], [], []

    def add(self, token, log_prob, total, aleatoric, members):
        for store, value in zip((self.tokens, self.log_prob, self.total, self.aleatoric, self.members),
                                (token, log_prob, total, aleatoric, members)):
            store.append(value.cpu())

    def row(self, i: int, length: int, stop: str) -> Decoded:
        col = lambda store: torch.stack(store[:length])[:, i].numpy()  # noqa: E731
        members = torch.stack(self.members[:length])[:, :, i].numpy().T if length else np.zeros((0, 0))
        return Decoded([int(t) for t in col(self.tokens)], stop, col(self.log_prob), col(self.total),
                       col(self.aleatoric), members)


def _decode_batch(causal, members: Sequence[Member], prompts: Sequence[Sequence[int]], pad_id: int, stops: StopTokens,
                  options: DecodingOptions, generator: torch.Generator | None, hold: bool) -> list[Decoded]:
    device = next(causal.parameters()).device
    n_members, batch = len(members), len(prompts)
    ids, mask = (t.to(device) for t in pad_sequences(prompts, pad_id, left=True))
    stop_ids = torch.tensor(sorted(stops.eos | stops.newline), dtype=torch.long, device=device)
    with ExitStack() as held:
        if hold:  # one member, entered once for the whole decode
            held.enter_context(members[0]())
        enter = (lambda s: nullcontext()) if hold else (lambda s: members[s]())  # noqa: E731
        caches, log_probs = [], []
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        for s in range(n_members):
            with enter(s):
                out = causal(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                             logits_to_keep=1)
            caches.append(out.cache)
            log_probs.append(_log_probs(out.logits))
        log_probs = torch.stack(log_probs)  # [S, B, V] float64
        steps, done = _Steps(), torch.zeros(batch, dtype=torch.bool, device=device)
        lengths, reasons = [options.max_new_tokens] * batch, ["length"] * batch
        for t in range(options.max_new_tokens):
            mean = torch.logsumexp(log_probs, dim=0) - math.log(n_members)  # [B, V]
            if options.do_sample:
                probs = torch.softmax(mean / options.temperature, dim=-1)
                token = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(device)
            else:
                token = mean.argmax(dim=-1)
            total = torch.special.entr(mean.exp()).sum(-1)
            aleatoric = torch.special.entr(log_probs.exp()).sum(-1).mean(0)
            chosen = token[None, :, None].expand(n_members, batch, 1)
            steps.add(token, mean.gather(1, token[:, None])[:, 0], total, aleatoric, log_probs.gather(2, chosen)[..., 0])
            for i in torch.nonzero(~done & torch.isin(token, stop_ids)).flatten().tolist():
                lengths[i], reasons[i] = t + 1, stops.reason(int(token[i]))
            done |= torch.isin(token, stop_ids)
            if bool(done.all()) or t == options.max_new_tokens - 1:
                break
            feed = token.masked_fill(done, pad_id)[:, None]
            mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
            positions = mask.sum(-1, keepdim=True) - 1
            for s in range(n_members):
                with enter(s):
                    out = causal(input_ids=feed, attention_mask=mask, position_ids=positions, cache=caches[s],
                                 use_cache=True)
                log_probs[s] = _log_probs(out.logits)
    return [steps.row(i, lengths[i], reasons[i]) for i in range(batch)]


@torch.no_grad()
def ensemble_decode(causal, members: Sequence[Member], prompts: Sequence[Sequence[int]], pad_id: int,
                    stops: StopTokens, options: DecodingOptions = DecodingOptions(), progress: bool = False,
                    hold: bool | None = None) -> list[Decoded]:
    """One :class:`Decoded` per prompt (token ids), in input order, decoded from the average of the
    members' next-token distributions (see the module docstring). ``causal`` is the causal LM the
    members act on; it runs in eval mode unless a member switches a mode. ``hold`` (default: when
    there is one member) enters the first member once for the whole decode."""
    if not members:
        raise InvalidSettingError("decoding needs at least one member")
    if not prompts:
        return []
    hold = len(members) == 1 if hold is None else hold
    if hold and len(members) != 1:
        raise InvalidSettingError("only a single member can be held for a whole decode")
    generator = torch.Generator().manual_seed(options.seed) if options.do_sample else None
    batches = length_sorted_batches([{"input_ids": p} for p in prompts], options.batch_size)
    out: list[Decoded | None] = [None] * len(prompts)
    was_training = causal.training
    causal.eval()
    try:
        for idx in tqdm(batches, desc="decoding", unit="batch", leave=False, disable=not progress):
            for i, decoded in zip(idx, _decode_batch(causal, members, [prompts[i] for i in idx], pad_id, stops,
                                                     options, generator, hold)):
                out[i] = decoded
    finally:
        causal.train(was_training)
    return out


def member_decode(causal, members: Sequence[Member], prompts: Sequence[Sequence[int]], pad_id: int,
                  stops: StopTokens, options: DecodingOptions = DecodingOptions(),
                  progress: bool = False) -> list[list[Decoded]]:
    """Sample-then-decode: ``[S][N]`` answers, member s decoding every prompt alone (sampling, if
    asked, seeded by ``options.seed + s``)."""
    return [ensemble_decode(causal, [member], prompts, pad_id, stops,
                            DecodingOptions(options.max_new_tokens, options.do_sample, options.temperature,
                                            options.seed + s, options.batch_size), progress)
            for s, member in enumerate(members)]
