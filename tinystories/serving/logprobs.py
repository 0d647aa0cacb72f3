"""Logprob entries: one a token (generated, or a prompt's with ``echo``), and the forward pass that scores a prompt."""

from dataclasses import dataclass

import torch

from .detokenizer import Detokenizer

MIN_LOGPROB = -9999.0  # what -inf (and NaN) logprobs are shown as: JSON has no infinity (vLLM does the same)


@dataclass(slots=True)
class TokenLogprob:
    """A token's logprob and the most likely tokens at its position.

    ``logprob`` and ``top`` are None for a prompt's first token (nothing predicts it); ``top`` maps token ids to
    logprobs, most likely first; ``offset`` is where the token's text starts in the text it belongs to (the reply's,
    or the prompt's for an echoed prompt token).
    """

    token_id: int
    logprob: float | None
    top: dict[int, float] | None
    offset: int = 0


def log_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Logprobs that JSON can carry: -inf and NaN become ``MIN_LOGPROB``."""
    return torch.log_softmax(scores.float(), dim=-1).clamp_min(MIN_LOGPROB).nan_to_num(MIN_LOGPROB)


def entries(logprobs: torch.Tensor, chosen: torch.Tensor, ks: list[int]) -> list[TokenLogprob]:
    """One entry a row of ``logprobs`` (rows x vocab): the ``chosen`` token's logprob and the row's top ``ks[i]``."""
    picked = logprobs.gather(-1, chosen.unsqueeze(-1)).squeeze(-1).tolist()
    k = max(ks, default=0)
    top_values, top_ids = (t.tolist() for t in logprobs.topk(k, dim=-1)) if k else ([], [])
    ids = chosen.tolist()
    return [
        TokenLogprob(ids[i], picked[i], dict(zip(top_ids[i][: ks[i]], top_values[i][: ks[i]])) if ks[i] else {})
        for i in range(len(ids))
    ]


def prompt_logprobs(model, ids: list[int], k: int, device, decode, text: str) -> list[TokenLogprob]:
    """The model's own distribution over each prompt token (no bias, penalty or temperature): one unpadded forward
    pass; the first token gets ``None``. Offsets point into ``text``, the prompt's text."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids], device=device), use_cache=False).logits[0]
        scored = entries(log_softmax(logits[:-1]), torch.tensor(ids[1:], device=logits.device), [k] * (len(ids) - 1))
    replay = Detokenizer(decode, [], "")
    for token in ids:
        replay.append(token, decode=False)
    out = [TokenLogprob(ids[0], None, None), *scored]
    for entry, offset in zip(out, replay.offsets()):
        entry.offset = min(offset, len(text))
    return out
