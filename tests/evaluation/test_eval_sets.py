import json
import os
import subprocess
import sys

import pytest

from tinystories.errors import EvaluationError
from tinystories.evaluation import EvaluateArguments, load_prompts
from tinystories.evaluation.eval_sets import (
    PROBE_CATEGORIES,
    load_instruct_prompts,
    load_probes,
    load_story_beginnings,
    probe_passed,
)
from tinystories.story_formats import FEATURES


def test_story_beginnings_stop_mid_sentence():
    beginnings = load_story_beginnings()
    assert len(beginnings) == 50 and len({b["id"] for b in beginnings}) == 50
    assert all(b["beginning"].rstrip()[-1].isalpha() for b in beginnings)  # no final punctuation
    assert all(20 <= len(b["beginning"].split()) <= 90 for b in beginnings)


def test_probes_cover_the_three_categories_with_answers():
    probes = load_probes()
    assert {p["category"] for p in probes} == set(PROBE_CATEGORIES)
    assert all(sum(p["category"] == c for p in probes) == 10 for c in PROBE_CATEGORIES)
    assert all(p["answer"] and all(a == a.lower() for a in p["answer"]) for p in probes)


def test_instruct_prompts_use_known_features():
    prompts = load_instruct_prompts()
    assert len(prompts) == 50
    assert all(len(p["words"]) == 3 and set(p["features"]) <= set(FEATURES) for p in prompts)


def test_probe_check_looks_at_the_first_words():
    assert probe_passed(" sky. It was a nice day.", ["sky"])
    assert not probe_passed(" garden, and then she looked at the sky.", ["sky"])
    assert probe_passed(" 1 apple left.", ["one", "1"])


# -- prompts_file: the official YAML, JSON and JSONL, lists of strings or of objects ------------------------------
BEGINNINGS = ["Once upon a time, Lily found a small", "Tom and his dog ran to the big", 'Sue said, "Look at the']


def prompts_of(path, config_name="default"):
    return load_prompts(EvaluateArguments(prompts_file=str(path), config_name=config_name))


def official_yaml(path):
    """A file in the layout of `Evaluation prompts.yaml`: a YAML list of story-beginning strings."""
    path.write_text("".join(f"- {json.dumps(b)}\n" for b in BEGINNINGS[:2]) + f"- >-\n  {BEGINNINGS[2]}\n")
    return path


@pytest.mark.parametrize(
    "name, text",
    [
        ("official.yaml", None),
        ("list.json", json.dumps(BEGINNINGS)),
        ("objects.json", json.dumps([{"id": str(i + 1), "beginning": b} for i, b in enumerate(BEGINNINGS)])),
        ("strings.jsonl", "".join(json.dumps(b) + "\n" for b in BEGINNINGS)),
        ("lines.json", "".join(json.dumps({"beginning": b}) + "\n" for b in BEGINNINGS)),  # JSONL named .json
    ],
)
def test_prompts_file_formats_give_the_same_prompts(tmp_path, name, text):
    path = tmp_path / name
    official_yaml(path) if text is None else path.write_text(text)
    assert prompts_of(path) == [{"id": str(i + 1), "prompt": b, "reference": b} for i, b in enumerate(BEGINNINGS)]


def test_instruct_prompts_file_of_instruct_texts_or_objects(tmp_path):
    row = {"words": ["run", "dog", "big"], "features": ["Dialogue"], "summary": "A dog runs.", "sentence": ""}
    texts = tmp_path / "instruct.yaml"
    texts.write_text("- |-\n  Summary: A dog runs.\n  Features: Dialogue\n  Words: run, dog, big\n")
    objects = tmp_path / "instruct.jsonl"
    objects.write_text(json.dumps(row) + "\n")
    (from_text,) = prompts_of(texts, "instruct")
    assert from_text == prompts_of(objects, "instruct")[0]
    assert from_text["prompt"] == "Summary: A dog runs.\nFeatures: Dialogue\nWords: run, dog, big\nStory: \n"


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.yaml", "- [unclosed\n", "bad.yaml: not valid YAML"),
        ("map.yaml", "beginning: Tom went to the\n", "expected a list of prompts (strings or objects), found dict"),
        ("item.yaml", "- Tom went to the\n- 42\n", "item 2: expected a story beginning (a string)"),
        ("empty.yaml", "[]\n", "no prompts in"),
        ("nobeginning.json", '[{"id": "x", "text": "Tom"}]', "item 1: no 'beginning'"),
        ("broken.json", '["Tom went to the", ', "broken.json: not valid JSON"),
    ],
)
def test_malformed_prompts_files_name_the_file_and_the_problem(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(EvaluationError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        prompts_of(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


OFFICIAL_SCRIPT = """
import json, os, sys
from tinystories.evaluation import EvaluateArguments, load_prompts
from tinystories.errors import EvaluationError
args = EvaluateArguments(prompts_file="official")
try:
    load_prompts(args)
    print(json.dumps({"offline_error": None}))
except EvaluationError as e:
    print(json.dumps({"offline_error": str(e)}))
# the file as hf_hub_download caches it: refs/main names a snapshot holding it
repo = os.path.join(os.environ["HF_HOME"], "hub", "datasets--roneneldan--TinyStories")
commit = "0123456789abcdef0123456789abcdef01234567"
os.makedirs(os.path.join(repo, "refs")); os.makedirs(os.path.join(repo, "snapshots", commit))
open(os.path.join(repo, "refs", "main"), "w").write(commit)
with open(os.path.join(repo, "snapshots", commit, "Evaluation prompts.yaml"), "w") as f:
    f.write(sys.argv[1])
print(json.dumps({"prompts": load_prompts(args)}))
"""


def test_official_prompts_download_and_a_clear_error_offline(tmp_path):
    source = tmp_path / "source.yaml"
    official_yaml(source)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-c", OFFICIAL_SCRIPT, source.read_text()],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    offline, loaded = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    error = offline["offline_error"]
    assert error.startswith("prompts_file official: cannot download 'Evaluation prompts.yaml' from the Hub dataset")
    assert "roneneldan/TinyStories" in error and "set prompts_file to its path" in error and "\n" not in error
    assert [p["prompt"] for p in loaded["prompts"]] == BEGINNINGS  # read from the Hub cache through hf_hub_download
