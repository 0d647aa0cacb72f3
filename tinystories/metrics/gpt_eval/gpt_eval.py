"""GPT-Eval: TinyStories' LLM-as-judge grading of story completions (Eldan & Li, 2023), as an evaluate metric."""

import dataclasses

import datasets
import evaluate

from tinystories.evaluation.judge import AXES, JUDGE_KWARGS, JudgeArguments, JudgeSettings, grade

_CITATION = """\
@article{eldan2023tinystories,
  title   = {TinyStories: How Small Can Language Models Be and Still Speak Coherent English?},
  author  = {Eldan, Ronen and Li, Yuanzhi},
  journal = {arXiv preprint arXiv:2305.07759},
  year    = {2023}
}
"""

_DESCRIPTION = """\
GPT-Eval asks a judge LLM (any OpenAI-compatible server) to grade a model's completion of a story beginning that
stops mid-sentence. The judge sees `beginning***completion` in the paper's two-turn dialogue, in the paper's words
(a free assessment, then grades for grammar, creativity, consistency with the beginning and whether the plot makes
sense, and the writer's age group A-F).
Replies are parsed robustly; an unreadable reply is asked again, then counted as ungraded, never guessed. The
`instruct` config grades a story against its instructions and adds `plot`. Requests go through tinystories' LLM
engine: cached (a second identical run sends nothing), retried, concurrent, with token and cost accounting.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): the model's completions (or, for `instruct`, its stories).
    references (`list` of `str`): the story beginnings (or, for `instruct`, the instructions: the TinyStories-Instruct
        text "Summary: ...\nFeatures: Dialogue\nRandom sentence: ...\nWords: a, b, c" or a JSON object with
        words, features, summary, sentence).
    groups (`list`, optional): one key per prediction for the cluster-bootstrap intervals (default: equal
        references form a group, e.g. the 10 completions of one beginning).
    prompt_style (`str`, default "paper"): "paper" sends the paper's texts (the format line only on a re-ask);
        "strict" this package's earlier wording with the format line on the first grade turn.
    truncate_repeated_ngram (`int`, default None): cut each prediction at its first repeated word n-gram before
        the judge sees it (the paper's 4 for GPT-Neo/GPT-2 baselines).
    judge_model, base_url, api_key_env, max_concurrency, adaptive_concurrency, max_retries, max_content_retries,
        request_timeout, cache_dir, budget_usd, prices: the judge's connection (the keys of tinystories' LLMConfig); judge_temperature (default 0),
        judge_max_tokens, max_reasks (default 2): the protocol's. Given to `evaluate.load(...)` or to
        `compute(...)` (compute wins; `cache_dir` at load time is also evaluate's own folder). The API key is read
        from the environment only (`api_key_env`, default OPENAI_API_KEY).
    structured_output (`bool`): ask for the grades as JSON with a schema (`response_format`), where supported.
    logprobs (`bool`, default True), top_logprobs (`int`, default 20): ask for the grade turn's logprobs; where the
        server returns them, `<axis>_weighted` is the probability-weighted grade (sum of p(s) * s over the score
        token's alternatives 0-10, normalised by their mass). A server that refuses logprobs is asked without.
    return_samples (`bool`): also return the per-sample records (assessment, reply, grades, error).
Returns:
    grammar, creativity, consistency (and plot for `instruct`; for `default`, plot, plot_ci and num_plot when some
    reply gave a plot grade, over those replies): means over graded samples (1-10);
    <axis>_ci: 95% cluster-bootstrap interval [low, high] (ci_method "cluster" or "naive", num_groups);
    <axis>_weighted, <axis>_weighted_ci, <axis>_num_weighted (where logprobs were returned); age_group: letter -> share; num_graded, num_ungraded;
    ungraded_reasons: {reason: count}; prompt_style; num_truncated (with truncate_repeated_ngram);
    usage: requests sent/cached, tokens, cost_usd; samples (with return_samples; an ungraded sample has
    ungraded_reason and failed_turn, the first of each reason ungraded_example).
Examples:
    >>> import evaluate, tinystories.metrics
    >>> gpt_eval = evaluate.load(tinystories.metrics.GPT_EVAL, judge_model="gpt-4o")  # doctest: +SKIP
    >>> gpt_eval.compute(predictions=[" park. She played all day."], references=["Lily went to the"])  # doctest: +SKIP
"""

#: What ``evaluate.load`` and ``compute`` accept: the judge's LLM settings and the protocol's (``JUDGE_KWARGS``).
_KWARGS = (*JUDGE_KWARGS, "progress")
_PROTOCOL = tuple(f.name for f in dataclasses.fields(JudgeSettings))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GptEval(evaluate.Metric):
    """GPT-Eval metric (configs `default` and `instruct`)."""

    def __init__(self, config_name=None, cache_dir=None, **kwargs):
        # at load time `cache_dir` is evaluate's own too: the judge's request cache lives in the same folder
        self.judge_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _KWARGS}
        if cache_dir is not None:
            self.judge_kwargs["cache_dir"] = cache_dir
        super().__init__(config_name=config_name, cache_dir=cache_dir, **kwargs)

    def _info(self):
        if self.config_name not in AXES:
            raise ValueError(f"Unknown GPT-Eval config {self.config_name!r}; choose one of: {', '.join(AXES)}")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://arxiv.org/abs/2305.07759"],
        )

    def _compute(self, predictions, references, return_samples=False, groups=None, **kwargs):
        unknown = [k for k in kwargs if k not in _KWARGS]
        if unknown:
            raise ValueError(f"Unknown GPT-Eval arguments {unknown}; known: {', '.join(_KWARGS)}")
        values = {**self.judge_kwargs, **kwargs}
        progress = values.pop("progress", True)
        llm = JudgeArguments(**{k: v for k, v in values.items() if k not in _PROTOCOL}).llm_config()
        settings = JudgeSettings(**{k: v for k, v in values.items() if k in _PROTOCOL})
        groups = None if groups is None else list(groups)
        scores, samples = grade(
            list(predictions), list(references), self.config_name, llm, settings, progress, groups=groups
        )
        if return_samples:
            scores["samples"] = samples
        return scores
