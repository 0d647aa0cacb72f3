"""`tinystories demo`: the main job end to end, on the bundled stories and on a Hub-layout folder."""

import os
import re
import subprocess
import sys

import datasets
from conftest import make_stories
from transformers import AutoModelForCausalLM

from tinystories.demo import bundled_stories_path
from tinystories.story_formats import iter_stories


def run_demo(args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "tinystories", "demo", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_bundled_stories_are_many_simple_and_unique():
    stories = list(iter_stories(bundled_stories_path()))
    assert len(stories) >= 100
    assert len(set(stories)) == len(stories)
    assert all(s.isascii() and 50 <= len(s.split()) <= 400 for s in stories)


def _ngrams(text, n):
    words = re.findall(r"[a-z']+", text.lower())
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_bundled_stories_are_not_copied_from_the_v2_sample(v2_sample):
    # stock phrases ("Once upon a time, there was a little girl named Lily") are the style; 12 words in a row are not
    sample = _ngrams(open(v2_sample, encoding="utf-8").read(), 12)
    shared = [g for story in iter_stories(bundled_stories_path()) for g in _ngrams(story, 12) & sample]
    assert shared == []


def test_demo_without_the_hub_says_so_and_trains_on_bundled_stories(tmp_path):
    out = tmp_path / "demo"
    stdout = run_demo(["--output_dir", str(out), "--max_minutes", "0.1"], {"HF_HUB_OFFLINE": "1"})
    assert "Could not reach the Hugging Face Hub" in stdout
    assert "bundled" in stdout
    match = re.search(r"eval loss (\d+\.\d+)", stdout)
    assert match and float(match.group(1)) < 6.9  # below an untrained model's ~ln(1024)
    assert stdout.count("Sample ") >= 3
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "gpt_neo"
    assert not [p for p in os.listdir(out) if p.startswith("checkpoint-")]  # the toy checkpoints are cleaned up


def test_demo_streams_stories_from_a_dataset_repo_layout(tmp_path):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    stories = make_stories(400, seed=5)
    datasets.Dataset.from_dict({"text": stories[:300]}).to_parquet(str(repo / "data" / "train-00000.parquet"))
    datasets.Dataset.from_dict({"text": stories[300:]}).to_parquet(str(repo / "data" / "validation-00000.parquet"))
    out = tmp_path / "demo"
    stdout = run_demo(
        ["--dataset", str(repo), "--num_stories", "250", "--output_dir", str(out), "--max_minutes", "0.05"]
    )
    assert f"250 train / 100 validation stories of {repo}" in stdout
    assert len(list(iter_stories(str(out / "data" / "train.txt")))) == 250
    assert os.path.isfile(out / "model.safetensors")
