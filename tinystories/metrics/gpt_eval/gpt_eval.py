"""GPT-Eval: TinyStories' LLM-as-judge grading of story completions (Eldan & Li, 2023), as an evaluate metric."""

import datasets
import evaluate

from tinystories.judge import AXES, JudgeSettings, grade

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
    judge_model, base_url, max_concurrency, cache_dir, temperature, max_tokens, max_reasks, budget_usd:
        judge settings; given to `evaluate.load(...)` or to `compute(...)` (compute wins; at load time the request
        cache folder is `judge_cache_dir`, as `cache_dir` is evaluate's own). The API key is read from the
        environment only (OPENAI_API_KEY).
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

_SETTINGS = (
    "judge_model",
    "base_url",
    "max_concurrency",
    "cache_dir",
    "temperature",
    "max_tokens",
    "max_reasks",
    "budget_usd",
    "max_retries",
    "request_timeout",
    "progress",
    "prices",
    "structured_output",
    "logprobs",
    "top_logprobs",
)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GptEval(evaluate.Metric):
    """GPT-Eval metric (configs `default` and `instruct`)."""

    def __init__(self, config_name=None, judge_cache_dir=None, **kwargs):
        # `cache_dir` belongs to evaluate itself at load time: the judge's request cache is `judge_cache_dir` here
        self.judge_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _SETTINGS and k != "cache_dir"}
        if judge_cache_dir is not None:
            self.judge_kwargs["cache_dir"] = judge_cache_dir
        super().__init__(config_name=config_name, **kwargs)

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
        unknown = [k for k in kwargs if k not in _SETTINGS]
        if unknown:
            raise ValueError(f"Unknown GPT-Eval arguments {unknown}; known: {', '.join(_SETTINGS)}")
        settings = JudgeSettings(**{**self.judge_kwargs, **kwargs})
        scores, samples = grade(list(predictions), list(references), self.config_name, settings)
        if return_samples:
            scores["samples"] = samples
        return scores
