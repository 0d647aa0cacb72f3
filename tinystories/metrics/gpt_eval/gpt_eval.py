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
stops mid-sentence. The judge sees `beginning***completion` in the paper's two-turn dialogue (a free assessment,
then grades out of 10 for grammar, creativity and consistency with the beginning, and the writer's age group A-F).
Replies are parsed robustly; an unreadable reply is asked again, then counted as ungraded, never guessed. The
`instruct` config grades a story against its instructions and adds `plot`. Requests go through tinystories' LLM
engine: cached (a second identical run sends nothing), retried, concurrent, with token and cost accounting.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): the model's completions (or, for `instruct`, its stories).
    references (`list` of `str`): the story beginnings (or, for `instruct`, the instructions).
    judge_model, base_url, api_key_env, max_concurrency, max_retries, request_timeout, cache_dir, budget_usd,
        prices: the judge's connection (the keys of tinystories' LLMConfig); judge_temperature (default 0),
        judge_max_tokens, max_reasks (default 2): the protocol's. Given to `evaluate.load(...)` or to
        `compute(...)` (compute wins; `cache_dir` at load time is also evaluate's own folder). The API key is read
        from the environment only (`api_key_env`, default OPENAI_API_KEY).
    structured_output (`bool`): ask for the grades as JSON with a schema (`response_format`), where supported.
    logprobs (`bool`, default True), top_logprobs (`int`, default 20): ask for the grade turn's logprobs; where the
        server returns them, `<axis>_weighted` is the probability-weighted grade (sum of p(s) * s over the score
        token's alternatives 0-10, normalised by their mass). A server that refuses logprobs is asked without.
    return_samples (`bool`): also return the per-sample records (assessment, reply, grades, error).
Returns:
    grammar, creativity, consistency (and plot for `instruct`): means over graded samples (1-10);
    <axis>_ci: 95% bootstrap interval [low, high]; <axis>_weighted, <axis>_weighted_ci, <axis>_num_weighted
    (where logprobs were returned); age_group: letter -> share; num_graded, num_ungraded;
    usage: requests sent/cached, tokens, cost_usd; samples (with return_samples).
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

    def _compute(self, predictions, references, return_samples=False, **kwargs):
        unknown = [k for k in kwargs if k not in _KWARGS]
        if unknown:
            raise ValueError(f"Unknown GPT-Eval arguments {unknown}; known: {', '.join(_KWARGS)}")
        values = {**self.judge_kwargs, **kwargs}
        progress = values.pop("progress", True)
        llm = JudgeArguments(**{k: v for k, v in values.items() if k not in _PROTOCOL}).llm_config()
        settings = JudgeSettings(**{k: v for k, v in values.items() if k in _PROTOCOL})
        scores, samples = grade(list(predictions), list(references), self.config_name, llm, settings, progress)
        if return_samples:
            scores["samples"] = samples
        return scores
