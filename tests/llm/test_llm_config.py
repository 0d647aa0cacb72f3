"""One LLMConfig: its keys are the recipe keys of generate and evaluate and the GPT-Eval metric's kwargs."""

import dataclasses

import evaluate
import pytest
from openai_server import FakeOpenAIServer

import tinystories.metrics
from tinystories.evaluation import EvaluateArguments, JudgeArguments, JudgeSettings
from tinystories.evaluation.judge import JUDGE_KWARGS
from tinystories.llm import LLM_SETTINGS, LLMConfig, LLMEngine
from tinystories.synth import GenerateArguments

LLM_FIELDS = [f.name for f in dataclasses.fields(LLMConfig)]


def field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_user_of_an_llm_has_llm_configs_keys_under_the_same_names():
    assert LLM_FIELDS[0] == "model" and set(LLM_SETTINGS) == set(LLM_FIELDS[1:])
    assert field_names(GenerateArguments) >= set(LLM_FIELDS)  # the teacher's model is `model`
    judge = {"judge_model", *LLM_SETTINGS}
    assert field_names(JudgeArguments) == judge  # the judge's model is `judge_model`, the rest the same
    assert field_names(EvaluateArguments) >= judge | field_names(JudgeSettings)
    # the metric accepts exactly the judge's keys (and the protocol's), the ones an evaluate recipe has
    assert set(JUDGE_KWARGS) == judge | field_names(JudgeSettings)
    # the derived dataclasses take LLMConfig's defaults and help, declared once
    for f in dataclasses.fields(JudgeArguments):
        if f.name in LLM_SETTINGS:
            original = {g.name: g for g in dataclasses.fields(LLMConfig)}[f.name]
            assert (f.default, f.metadata["help"]) == (original.default, original.metadata["help"])


def test_recipe_dataclasses_give_back_the_llm_config_and_check_it():
    args = GenerateArguments(model="teacher", base_url="http://h/v1", max_concurrency=3, prices="{teacher: [1, 2]}")
    config = args.llm_config()
    assert (config.model, config.base_url, config.max_concurrency) == ("teacher", "http://h/v1", 3)
    assert config.prices == {"teacher": (1.0, 2.0)} and args.prices == {"teacher": (1.0, 2.0)}
    judge = EvaluateArguments(model_name_or_path="m", judge_model="judge", request_timeout=9.0)
    assert judge.llm_config().model == "judge" and judge.judge_llm().cache_dir.endswith(".cache")
    with pytest.raises(ValueError, match="max_concurrency"):
        GenerateArguments(max_concurrency=0)
    with pytest.raises(ValueError, match="prices"):
        EvaluateArguments(prices={"judge": [1.0]})


def test_public_base_url_drops_credentials_of_every_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    config = LLMConfig(base_url="http://user:secret@a:1/v1, http://b:2/v1")
    assert config.public_base_url() == "http://a:1/v1,http://b:2/v1"
    assert config.endpoints() == ["http://user:secret@a:1/v1", "http://b:2/v1"]
    monkeypatch.setenv("OPENAI_BASE_URL", "http://key:x@c/v1")
    assert LLMConfig().public_base_url() == "http://c/v1"


def test_the_key_comes_from_the_variable_api_key_env_names(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-mine")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other")
    with FakeOpenAIServer(require_api_key="sk-mine") as server:
        config = LLMConfig(model="fake-gpt", base_url=server.base_url, cache_dir=str(tmp_path), max_retries=0)
        refused = LLMEngine(config, progress=False).run([[{"role": "user", "content": "Hi"}]])
        engine = LLMEngine(dataclasses.replace(config, api_key_env="MY_JUDGE_KEY"), progress=False)
        accepted = engine.run([[{"role": "user", "content": "Hi"}]])
    assert not refused[0].ok and "401" in refused[0].error
    assert accepted[0].ok
    assert "sk-mine" not in (tmp_path / "requests.sqlite").read_bytes().decode("latin-1")


def test_the_metric_takes_the_same_keys_at_load_and_at_compute(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")
    with FakeOpenAIServer() as server:
        metric = evaluate.load(tinystories.metrics.GPT_EVAL, judge_model="fake-gpt", cache_dir=str(tmp_path))
        scores = metric.compute(
            predictions=[" park."], references=["Lily went to the"], base_url=server.base_url, progress=False
        )
        with pytest.raises(ValueError, match="Unknown GPT-Eval arguments"):
            metric.compute(predictions=[" park."], references=["Lily"], judge_cache_dir=str(tmp_path))
    assert scores["num_graded"] + scores["num_ungraded"] == 1
    assert (tmp_path / "requests.sqlite").is_file()  # cache_dir at load time is the judge's request cache too


def test_a_recorded_recipe_keeps_its_own_endpoint_without_credentials(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://from-env/v1")
    assert GenerateArguments().recipe()["base_url"] is None  # the recipe set none: rerunning it reads the env again
    assert GenerateArguments(base_url="http://u:p@h/v1").recipe()["base_url"] == "http://h/v1"
