"""GPT-Eval's intervals: the cluster bootstrap over beginnings (then completions within them) against the naive one,
measured on grades that differ only between beginnings, through the metric and on the functions themselves."""

import re

import evaluate
import numpy as np
import pytest
from openai_server import FakeOpenAIServer

import tinystories.metrics
from tinystories.evaluation.intervals import (
    bootstrap_ci,
    ci_method,
    cluster_bootstrap_ci,
    group_ids,
    naive_bootstrap_ci,
)

#: 5 beginnings x 10 completions; every completion of beginning b is graded BEGINNING_GRADES[b]
BEGINNING_GRADES = [3, 5, 6, 7, 9]


def test_clustered_interval_is_wider_when_grades_differ_only_between_beginnings(tmp_path):
    beginnings = [f"Beginning number {b} stops in the" for b in range(5)]
    predictions = [f" park, completion {k}." for b in range(5) for k in range(10)]
    references = [beginnings[b] for b in range(5) for _ in range(10)]

    def judge(request):
        if len(request["messages"]) == 1:
            return "Fine."
        g = BEGINNING_GRADES[int(re.search(r"Beginning number (\d)", request["messages"][0]["content"]).group(1))]
        return f"Grammar: {g}/10, Creativity: {g}/10, Consistency: {g}/10, Age group: B"

    metric = evaluate.load(tinystories.metrics.GPT_EVAL, cache_dir=str(tmp_path), progress=False)
    with FakeOpenAIServer(responder=judge) as server:
        scores = metric.compute(
            predictions=predictions, references=references, base_url=server.base_url, judge_model="fake-judge"
        )
    values = [g for g in BEGINNING_GRADES for _ in range(10)]
    assert scores["grammar"] == pytest.approx(6.0) and scores["num_graded"] == 50
    assert scores["ci_method"] == "cluster" and scores["num_groups"] == 5  # groups: equal references
    clustered, naive = scores["grammar_ci"], naive_bootstrap_ci(values)
    assert clustered == cluster_bootstrap_ci(values, [b for b in range(5) for _ in range(10)])
    width, naive_width = clustered[1] - clustered[0], naive[1] - naive[0]  # measured: 3.40 and 1.08
    assert width > 2 * naive_width
    # the spread of 5 group means (sd 2, standard error 2 / sqrt(5)): a 95% interval about 2 x 1.96 x 0.894 wide
    assert width == pytest.approx(2 * 1.96 * 2 / np.sqrt(5), rel=0.25)


def test_an_explicit_grouping_overrides_the_references():
    values = [3.0] * 10 + [9.0] * 10
    by_beginning = bootstrap_ci(values, [0] * 10 + [1] * 10)
    interleaved = bootstrap_ci(values, [i % 10 for i in range(20)])  # each group has one 3 and one 9
    assert by_beginning[1] - by_beginning[0] > 2 * (interleaved[1] - interleaved[0])


def test_one_member_per_group_falls_back_to_the_naive_bootstrap():
    values = [5.0, 7.0, 9.0, 6.0, 8.0]
    assert ci_method(list(range(5))) == "naive" and ci_method([0, 0, 1, 1, 2]) == "cluster"
    assert bootstrap_ci(values, list(range(5))) == naive_bootstrap_ci(values)
    assert bootstrap_ci(values) == naive_bootstrap_ci(values)
    assert bootstrap_ci([]) == pytest.approx([float("nan")] * 2, nan_ok=True)


def test_cluster_bootstrap_weighs_groups_by_size_and_covers_the_mean():
    values = [2.0] * 3 + [8.0] * 9 + [5.0, 6.0]  # unequal groups of 3, 9 and 2
    groups = ["a"] * 3 + ["b"] * 9 + ["c"] * 2
    low, high = cluster_bootstrap_ci(values, groups)
    assert low < np.mean(values) < high and 2.0 <= low and high <= 8.0
    assert cluster_bootstrap_ci(values, groups) == [low, high]  # seeded
    assert group_ids(["x", "y", "x", "z"]) == [0, 1, 0, 2]
    with pytest.raises(ValueError, match="groups"):
        cluster_bootstrap_ci(values, groups[:-1])
