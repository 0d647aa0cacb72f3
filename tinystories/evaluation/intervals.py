"""95% intervals of GPT-Eval's mean grades: a two-level (cluster) bootstrap over the story beginnings and the
completions of each, since the ~10 completions of one beginning are not independent (docs/evaluation.md)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

#: Resamples of every interval (seeded: the same interval every run).
RESAMPLES = 2000
#: Largest number of values drawn at once by the vectorised cluster bootstrap (bounds its memory).
_CHUNK_VALUES = 4_000_000


def group_ids(keys: Sequence[Hashable]) -> list[int]:
    """One group number per sample: samples with equal keys (e.g. equal references) share a group, numbered in
    order of first appearance."""
    numbers: dict[Hashable, int] = {}
    return [numbers.setdefault(key, len(numbers)) for key in keys]


def naive_bootstrap_ci(values: Sequence[float], samples: int = RESAMPLES, seed: int = 0) -> list[float]:
    """95% percentile bootstrap interval of the mean, resampling the values as if independent."""
    if len(values) == 0:
        return [float("nan"), float("nan")]
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


def cluster_bootstrap_ci(
    values: Sequence[float], groups: Sequence[Hashable], samples: int = RESAMPLES, seed: int = 0
) -> list[float]:
    """95% percentile interval of the mean from a two-level bootstrap: each resample draws as many groups as there
    are, with replacement, then, within each drawn group, as many of its values as it has, with replacement; the
    statistic is the mean of all values drawn (so a group weighs by its size, as in the plain mean)."""
    if len(values) != len(groups):
        raise ValueError(f"{len(values)} values but {len(groups)} groups")
    if len(values) == 0:
        return [float("nan"), float("nan")]
    ids = group_ids(groups)
    num_groups = max(ids) + 1
    sizes = np.bincount(ids, minlength=num_groups)
    width = int(sizes.max())
    table = np.zeros((num_groups, width))  # row g: the values of group g, left-aligned
    filled = np.zeros(num_groups, dtype=int)
    for value, g in zip(values, ids):
        table[g, filled[g]] = value
        filled[g] += 1
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, _CHUNK_VALUES // (num_groups * width))
    for start in range(0, samples, chunk):
        n = min(chunk, samples - start)
        drawn = rng.integers(0, num_groups, size=(n, num_groups))  # the groups of each resample
        drawn_sizes = sizes[drawn]  # (n, G)
        # within a drawn group of size s: s draws from its s values (slots >= s are masked out)
        within = np.floor(rng.random((n, num_groups, width)) * drawn_sizes[..., None]).astype(int)
        mask = np.arange(width)[None, None, :] < drawn_sizes[..., None]
        picked = table[drawn[..., None], within]
        means[start : start + n] = (picked * mask).sum(axis=(1, 2)) / drawn_sizes.sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


def bootstrap_ci(
    values: Sequence[float], groups: Sequence[Hashable] | None = None, samples: int = RESAMPLES, seed: int = 0
) -> list[float]:
    """The interval GPT-Eval reports: clustered by ``groups`` when some group has several members, else naive."""
    if groups is not None and len(set(groups)) < len(groups):
        return cluster_bootstrap_ci(values, groups, samples, seed)
    return naive_bootstrap_ci(values, samples, seed)


def ci_method(groups: Sequence[Hashable] | None) -> str:
    """``"cluster"`` or ``"naive"``: which bootstrap :func:`bootstrap_ci` uses for these groups."""
    return "cluster" if groups is not None and len(set(groups)) < len(groups) else "naive"
