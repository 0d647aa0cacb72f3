"""The paper's diversity check: are a model's completions new stories, or copies of its training data?

Training stories are cut in the middle of a sentence and completed by the model; for each completion, the Rouge-2
precision against the story's true continuation, the maximum against the other completions, and against the
closest training story (``NgramIndex``), reported as histograms (docs/evaluation.md: the measures and their limits).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .ngram_index import NgramIndex, rouge_n_precision, tokenize_words

# Whitespace between two words, the only places a story is cut (the continuation starts with it).
_GAP_RE = re.compile(r"\s+")
# A word ending a sentence: . ! ? (or an ellipsis) possibly followed by closing quotes or brackets.
_SENTENCE_END_RE = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")
_HIST_BINS = 10
MEASURES = ("rouge_vs_truth", "max_rouge_vs_others", "closest_train_rouge")


def cut_story(story: str, rng: random.Random, min_fraction: float = 0.3, max_fraction: float = 0.7) -> tuple[str, str]:
    """Cut ``story`` in the middle of a sentence into ``(beginning, true_continuation)``, the paper's prompts.

    The cut is at the whitespace after a word drawn uniformly among those between ``min_fraction`` and
    ``max_fraction`` of the story's words that do not end a sentence (a word ending in ``.``, ``!``, ``?`` or ``…``,
    possibly followed by a closing quote or bracket) and are not followed by a line break. When the range has no such
    word, the nearest one outside it is used; when the story has none at all, the nearest gap of any kind. The
    continuation starts with the whitespace, so ``beginning + continuation == story``; the same ``rng`` state gives
    the same cut.
    """
    if not 0.0 <= min_fraction <= max_fraction <= 1.0:
        raise ValueError(f"need 0 <= min_fraction <= max_fraction <= 1, got {min_fraction} and {max_fraction}")
    body = story.rstrip()
    # gaps[k - 1] is the whitespace after the k-th word (leading whitespace belongs to the first word)
    gaps = [gap for gap in _GAP_RE.finditer(body) if gap.start() > 0]
    if not gaps:
        raise ValueError(f"cannot cut a story of fewer than two words: {story[:80]!r}")
    num_words = len(gaps) + 1
    low = max(1, math.ceil(min_fraction * num_words))
    high = min(num_words - 1, math.floor(max_fraction * num_words))
    if low > high:  # a short story: the fraction range holds no word boundary, take the nearest one
        low = high = min(max(1, round((min_fraction + max_fraction) / 2 * num_words)), num_words - 1)

    def mid_sentence(words_before: int) -> bool:
        gap = gaps[words_before - 1]
        word = body[gaps[words_before - 2].end() if words_before > 1 else 0 : gap.start()]
        return "\n" not in gap.group() and not _SENTENCE_END_RE.search(word)

    in_range = [k for k in range(low, high + 1) if mid_sentence(k)]
    if in_range:
        words_before = rng.choice(in_range)
    else:
        elsewhere = [k for k in range(1, num_words) if mid_sentence(k)] or list(range(1, num_words))
        words_before = min(elsewhere, key=lambda k: (max(low - k, k - high), k))
    cut = gaps[words_before - 1].start()
    return story[:cut], story[cut:]


def _stats(values: Sequence[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    histogram = np.histogram(array, bins=_HIST_BINS, range=(0.0, 1.0))[0].tolist()
    if not len(array):
        return {"mean": None, "median": None, "p90": None, "max": None, "histogram": histogram}
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "p90": float(np.percentile(array, 90)),
        "max": float(array.max()),
        "histogram": histogram,
    }


@dataclass
class DiversityReport:
    """Per-completion results of :func:`diversity_report`, in the order of the completions.

    ``closest_train_index`` is -1 where no training story shares an n-gram with the completion (score 0.0).
    """

    rouge_vs_truth: list[float] = field(default_factory=list)
    max_rouge_vs_others: list[float] = field(default_factory=list)
    closest_train_rouge: list[float] = field(default_factory=list)
    closest_train_index: list[int] = field(default_factory=list)
    source_indices: list[int] | None = None
    n: int = 2

    def __len__(self) -> int:
        return len(self.rouge_vs_truth)

    def summary(self) -> dict:
        """Mean, median, 90th percentile, max and the counts of 10 equal bins over [0, 1] of each measure."""
        summary: dict = {"num_samples": len(self), "n": self.n, "histogram_bin_edges": _bin_edges()}
        for measure in MEASURES:
            summary[measure] = _stats(getattr(self, measure))
        if self.source_indices is not None and len(self):
            same = sum(a == b for a, b in zip(self.closest_train_index, self.source_indices))
            summary["closest_is_source_fraction"] = same / len(self)
        return summary

    def to_dict(self) -> dict:
        """The per-sample lists and the summary, JSON-serialisable."""
        return {**asdict(self), "summary": self.summary()}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _bin_edges() -> list[float]:
    return [round(edge, 10) for edge in np.linspace(0.0, 1.0, _HIST_BINS + 1).tolist()]


def diversity_report(
    completions: Sequence[str],
    true_continuations: Sequence[str],
    training_stories: Sequence[str],
    source_indices: Sequence[int] | None = None,
    n: int = 2,
    progress: bool = True,
    exclude_source: bool = False,
    training_index: NgramIndex | None = None,
) -> DiversityReport:
    """The paper's three measures for each completion (see the module docstring).

    ``completions[i]`` is the model's continuation of a training story cut by :func:`cut_story` (the generated text
    only, not the prompt, which would match its source story), ``true_continuations[i]`` the rest of that story and
    ``source_indices[i]`` (optional) its index in ``training_stories``. The closest training story may be the source
    itself, which is the point: a completion reciting its own story is a copy. ``exclude_source=True`` skips it.
    Pass ``training_index`` (an :class:`NgramIndex` of ``training_stories``) to reuse one across reports.
    """
    from tqdm.auto import tqdm

    if len(completions) != len(true_continuations):
        raise ValueError(
            f"got {len(completions)} completions but {len(true_continuations)} true continuations; need one each"
        )
    if source_indices is not None and len(source_indices) != len(completions):
        raise ValueError(f"got {len(source_indices)} source indices for {len(completions)} completions")
    if exclude_source and source_indices is None:
        raise ValueError("exclude_source=True needs source_indices")
    if training_index is None:
        training_index = NgramIndex(training_stories, n=n, progress=progress)
    elif training_index.n != n or len(training_index) != len(training_stories):
        raise ValueError(
            f"training_index is a {training_index.n}-gram index of {len(training_index)} stories, not a "
            f"{n}-gram index of the {len(training_stories)} training stories"
        )
    completions_index = NgramIndex(completions, n=n)
    report = DiversityReport(source_indices=None if source_indices is None else [int(i) for i in source_indices], n=n)
    for i in tqdm(range(len(completions)), desc="diversity", unit="completion", disable=not progress):
        tokens = tokenize_words(completions[i])
        report.rouge_vs_truth.append(rouge_n_precision(tokens, true_continuations[i], n))
        others = completions_index.closest(tokens, top_k=1, exclude=i)
        report.max_rouge_vs_others.append(others[0][1] if others else 0.0)
        exclude = int(source_indices[i]) if exclude_source else None
        closest = training_index.closest(tokens, top_k=1, exclude=exclude)
        report.closest_train_index.append(closest[0][0] if closest else -1)
        report.closest_train_rouge.append(closest[0][1] if closest else 0.0)
    return report


def diversity_figure(report: DiversityReport, title: str = "Diversity of completions (TinyStories)"):
    """The three histograms of ``report`` side by side, each with its mean, as a matplotlib ``Figure``.

    A bare ``Figure`` (no pyplot), so no backend is selected and interactive sessions are untouched.
    """
    from matplotlib.figure import Figure

    labels = {
        "rouge_vs_truth": f"Rouge-{report.n} precision vs the true continuation",
        "max_rouge_vs_others": f"max Rouge-{report.n} precision vs other completions",
        "closest_train_rouge": f"Rouge-{report.n} precision vs the closest training story",
    }
    figure = Figure(figsize=(15, 4.2), layout="constrained")
    axes = figure.subplots(1, 3, sharey=True)
    for ax, measure in zip(axes, MEASURES):
        values = getattr(report, measure)
        ax.hist(values, bins=np.linspace(0.0, 1.0, _HIST_BINS + 1), color="tab:blue", edgecolor="white")
        if values:
            mean = float(np.mean(values))
            ax.axvline(mean, color="tab:red", linestyle="--", label=f"mean {mean:.2f}")
            ax.legend(loc="best")
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel(labels[measure])
    axes[0].set_ylabel("completions")
    figure.suptitle(f"{title} ({len(report)} completions)")
    return figure


def plot_diversity(report: DiversityReport, path: str, title: str = "Diversity of completions (TinyStories)") -> str:
    """Save :func:`diversity_figure` of ``report`` as a PNG at ``path`` (its folder made if missing); returns
    ``path``."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    diversity_figure(report, title).savefig(path, format="png", dpi=100)
    return path


def run_diversity(args, model, tokenizer, folder: str) -> dict[str, Any]:
    """The paper's diversity check: complete cut training stories; Rouge-2 against the truth, the other
    completions and the closest training story; ``diversity.json`` and ``diversity.png``."""
    from ..story_formats import load_data_file
    from .sampling import sample_completions

    stories = [s for s in load_data_file(args.diversity_file)["text"] if s and s.strip()]
    if args.diversity_max_train_stories:
        stories = stories[: args.diversity_max_train_stories]
    rng = random.Random(args.seed)
    chosen = sorted(rng.sample(range(len(stories)), min(args.diversity_num_stories, len(stories))))
    cuts = [cut_story(stories[i], rng) for i in chosen]
    outputs = sample_completions(
        model,
        tokenizer,
        [b for b, _ in cuts],
        args.sampling(num_completions=1),
        progress=args.progress,
        desc="diversity",
    )
    completions = [texts[0] for texts in outputs]
    report = diversity_report(
        completions, [c for _, c in cuts], stories, source_indices=chosen, progress=args.progress
    )
    summary = report.summary()
    with open(os.path.join(folder, "diversity.json"), "w", encoding="utf-8") as f:
        samples = [
            {"story_index": i, "beginning": b, "true_continuation": c, "completion": comp}
            for i, (b, c), comp in zip(chosen, cuts, completions)
        ]
        json.dump({"summary": summary, "report": report.to_dict(), "samples": samples}, f, indent=2)
    plot_diversity(report, os.path.join(folder, "diversity.png"), title=f"Diversity: {os.path.basename(folder)}")
    return {"num_stories": len(chosen), "num_train_stories": len(stories), **summary}
