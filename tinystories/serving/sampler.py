"""Per-row sampling inside ONE ``generate`` call: a logits processor that picks each row's token with that row's
parameters, and a stopping criterion that records the tokens, ends rows, streams and answers requests."""

import threading

import torch
from transformers import LogitsProcessor, StoppingCriteria

from .api_errors import APIError
from .logprobs import entries, log_softmax
from .rows import Row

GREEDY_TEMPERATURE = 1e-5  # at or below: greedy (vLLM's threshold)


class RowSampler(LogitsProcessor):
    """Picks every row's next token with that row's parameters; returns logits allowing only that token.

    ``generate`` then runs greedy decoding, so it takes exactly the token chosen here: per-row temperature, top-p,
    penalties, logit bias and logprobs in one batched call. Rows at temperature 0 (at most ``GREEDY_TEMPERATURE``)
    take the most likely token, every other row is sampled; the uniform numbers come from ``generator``, one a row
    (all rows, in order) a step. Logprobs are those after bias and penalties, before temperature and top-p.
    """

    def __init__(self, rows: list[Row], vocab_size: int, device, generator: torch.Generator):
        params = [r.params for r in rows]
        self.rows = rows
        self.generator = generator
        self.temperature = torch.tensor([p.temperature for p in params], dtype=torch.float32, device=device)
        self.top_p = torch.tensor([p.top_p for p in params], dtype=torch.float32, device=device)
        self.greedy = [i for i, p in enumerate(params) if p.temperature <= GREEDY_TEMPERATURE]
        greedy = set(self.greedy)
        self.sampled = [i for i in range(len(rows)) if i not in greedy]  # every other row: none left unset
        self.top_p_sampled = bool((self.top_p[self.sampled] < 1).any()) if self.sampled else False
        self.with_logprobs = [i for i, p in enumerate(params) if p.logprobs is not None]
        self.ks = [params[i].logprobs for i in self.with_logprobs]
        self.bias = None
        if any(p.logit_bias for p in params):
            self.bias = torch.zeros(len(rows), vocab_size, device=device)
            for i, p in enumerate(params):
                for token, value in p.logit_bias.items():
                    self.bias[i, token] = value
        self.penalized = any(p.presence_penalty or p.frequency_penalty for p in params)
        if self.penalized:
            self.presence = torch.tensor([p.presence_penalty for p in params], device=device)[:, None]
            self.frequency = torch.tensor([p.frequency_penalty for p in params], device=device)[:, None]
            self.counts = torch.zeros(len(rows), vocab_size, device=device)
        self.entries: list = [None] * len(rows)  # this step's TokenLogprob of each row (None: no logprobs)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.float()
        vocab = scores.shape[-1]
        if self.bias is not None:
            scores = scores + self.bias[:, :vocab]
        if self.penalized:
            counts = self.counts[:, :vocab]
            scores = scores - self.frequency * counts - self.presence * (counts > 0)
        uniform = torch.rand(len(self.rows), generator=self.generator)  # drawn every step: reproducible
        choice = torch.empty(len(self.rows), dtype=torch.long, device=scores.device)
        if self.greedy:
            choice[self.greedy] = scores[self.greedy].argmax(-1)
        if self.sampled:
            idx = self.sampled
            probs = torch.softmax(scores[idx] / self.temperature[idx, None], dim=-1)
            order = None
            if self.top_p_sampled:
                probs, order = probs.sort(dim=-1, descending=True)
                before = probs.cumsum(-1) - probs  # mass of the more likely tokens
                probs = probs.masked_fill(before >= self.top_p[idx, None], 0.0)
            cdf = probs.cumsum(-1)
            u = (1 - uniform[idx]).to(cdf.device)  # in (0, 1]: never the tokens of probability 0 before
            picked = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).squeeze(-1).clamp_max(vocab - 1)
            if order is not None:
                picked = order.gather(-1, picked.unsqueeze(-1)).squeeze(-1)
            choice[idx] = picked
        if self.with_logprobs:
            idx = self.with_logprobs
            for i, entry in zip(idx, entries(log_softmax(scores[idx]), choice[idx], self.ks)):
                self.entries[i] = entry
        if self.penalized:
            self.counts[torch.arange(len(self.rows)), choice] += 1
        return torch.full_like(scores, float("-inf")).scatter_(-1, choice.unsqueeze(-1), 0.0)


class RowTracker(StoppingCriteria):
    """Records each row's new token, ends rows (EOS, stop string, max_tokens, client gone), streams, answers."""

    def __init__(self, rows: list[Row], sampler: RowSampler, closing: threading.Event):
        self.rows, self.sampler, self.closing = rows, sampler, closing
        self.jobs = list(dict.fromkeys(r.job for r in rows))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, -1].tolist()
        closing = self.closing.is_set()
        step_entries = self.sampler.entries
        for i, row in enumerate(self.rows):
            if row.finish_reason is not None:
                continue
            if closing or row.job.cancelled:
                row.finish_reason = "cancelled"
                continue
            row.add(new[i], step_entries[i])
        self.flush()
        return torch.tensor([r.finish_reason is not None for r in self.rows], device=input_ids.device)

    def flush(self, final: bool = False) -> None:
        """Stream the rows' new text; answer every job whose rows are all done (``final``: generate has ended)."""
        for job in self.jobs:
            if job.resolved:
                continue
            deltas, done = [], True
            for row in job.rows:
                if final and row.finish_reason is None:
                    row.finish_reason = "length"
                if row.finish_reason is not None:
                    if not row.finalized:
                        row.finalize()
                        if job.stream:
                            deltas.append(row.delta(final=True))
                else:
                    done = False
                    if job.stream:
                        delta = row.delta(final=False)
                        if delta.text or delta.logprobs:
                            deltas.append(delta)
            if not done:
                job.publish(deltas)
            elif any(row.finish_reason == "cancelled" for row in job.rows) and not job.cancelled:
                job.resolve(APIError(503, "The server shut down during generation.", code="shutting_down"))
            else:
                job.publish(deltas)
                job.resolve()
