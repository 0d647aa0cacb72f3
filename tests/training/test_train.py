"""Training end to end: tiny models, few steps, real Trainer runs."""

import glob
import json
import logging
import math
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, SMOKE, TINY, launch_two_cpu_processes, make_stories, write_v2
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from tinystories.train import main
from tinystories.training import parse_train_args, run
from tinystories.training.precision import cpu_has_native_bf16


def read_results(output_dir):
    with open(os.path.join(output_dir, "all_results.json")) as f:
        return json.load(f)


def eval_losses(output_dir):
    with open(os.path.join(output_dir, "trainer_state.json")) as f:
        history = json.load(f)["log_history"]
    return [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]


def train_losses(output_dir):
    with open(os.path.join(output_dir, "trainer_state.json")) as f:
        history = json.load(f)["log_history"]
    return {h["step"]: h["loss"] for h in history if "loss" in h}


def test_smoke_recipe_on_sample_writes_a_model_plain_transformers_loads(v2_sample, tmp_path):
    out = tmp_path / "smoke"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinystories",
            "train",
            SMOKE,
            "--train_file",
            v2_sample,
            "--output_dir",
            str(out),
            "--max_steps",
            "20",
            "--eval_steps",
            "10",
            "--save_steps",
            "10",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Sample story" in proc.stdout
    # plain transformers, without tinystories
    code = (
        "import sys, torch; from transformers import AutoModelForCausalLM, AutoTokenizer;"
        "m = AutoModelForCausalLM.from_pretrained(sys.argv[1]); t = AutoTokenizer.from_pretrained(sys.argv[1]);"
        "torch.manual_seed(0); ids = t('Once upon a time', return_tensors='pt');"
        "out = m.generate(**ids, max_new_tokens=20);"
        "print(out.shape[1] - ids['input_ids'].shape[1], m.config.model_type, m.generation_config.eos_token_id,"
        " t.eos_token); print(t.decode(out[0]))"
    )
    check = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    first, text = check.stdout.split("\n", 1)
    new_tokens, model_type, eos_id, eos = first.split()
    assert model_type == "gpt_neo" and eos == "<|endoftext|>" and int(eos_id) == 0
    assert int(new_tokens) > 0 and text.startswith("Once upon a time")
    results = read_results(out)
    for key in ("eval_loss", "perplexity", "num_input_tokens_seen", "train_tokens_per_second", "sample_story"):
        assert key in results
    assert results["num_input_tokens_seen"] == 20 * 8 * 128
    assert math.isclose(results["perplexity"], math.exp(results["eval_loss"]), rel_tol=1e-6)


def test_pruning_a_pretrained_tokenizer_as_the_published_recipes_do(tmp_path):
    """recipes/tinystories-*/pretrain.yaml set tokenizer_name_or_path (GPT-Neo's BPE) and tokenizer_vocab_size: the
    tokenizer is pruned to its most frequent tokens on the training stories, and the model sized to it."""
    from tinystories.tokenization import EOS_TOKEN, train_tokenizer

    base_folder = tmp_path / "base-tokenizer"  # a saved byte-level BPE stands for the Hub tokenizer
    base = train_tokenizer(make_stories(300, seed=5), vocab_size=600)
    base.save_pretrained(base_folder)
    published = parse_train_args([os.path.join(REPO, "recipes", "tinystories-1M", "pretrain.yaml")]).model
    assert published.tokenizer_name_or_path and published.tokenizer_vocab_size  # the path taken below

    train_file = write_v2(tmp_path / "stories.txt", make_stories(160, seed=6))
    out = tmp_path / "model"
    results = main(
        [
            SMOKE,
            "--train_file",
            train_file,
            *TINY,  # --tokenizer_vocab_size 300
            "--tokenizer_name_or_path",
            str(base_folder),
            "--max_steps",
            "12",
            "--learning_rate",
            "3e-3",
            "--save_strategy",
            "no",
            "--output_dir",
            str(out),
        ]
    )
    pruned = AutoTokenizer.from_pretrained(out)
    assert len(pruned) == 300 and pruned.eos_token == EOS_TOKEN
    assert set(pruned.get_vocab()) <= set(AutoTokenizer.from_pretrained(base_folder).get_vocab())  # pruned, not new
    text = make_stories(1, seed=9)[0] + " Zebras quack!"  # rare text too: byte fallback of byte-level BPE
    ids = pruned(text)["input_ids"]
    assert max(ids) < 300 and pruned.decode(ids) == text
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.vocab_size == 300 and model.get_input_embeddings().weight.shape[0] == 300
    assert model.config.eos_token_id == pruned.eos_token_id
    losses = train_losses(out)
    assert sorted(losses) == list(range(1, 13)) and all(math.isfinite(loss) for loss in losses.values())
    assert losses[12] < losses[1], losses  # it learns with the pruned vocabulary
    assert math.isfinite(results["eval_loss"]) and results["eval_loss"] < math.log(300)


def test_eval_loss_falls_well_below_its_start(v2_sample, tmp_path):
    out = str(tmp_path / "falls")
    main(
        [
            SMOKE,
            "--train_file",
            v2_sample,
            "--output_dir",
            out,
            "--max_steps",
            "60",
            "--eval_on_start",
            "--eval_steps",
            "30",
            "--save_strategy",
            "no",
            "--max_eval_samples",
            "40",
            "--report_to",
            "tensorboard",
        ]
    )
    assert glob.glob(os.path.join(out, "**", "events.out.tfevents*"), recursive=True)  # tensorboard logging
    losses = eval_losses(out)
    assert [step for step, _ in losses] == [0, 30, 60, 60]
    start, end = losses[0][1], losses[-1][1]
    assert start > 6.5  # ~ln(1024): an untrained model
    assert end < start - 1.5, losses


class StopAt(TrainerCallback):
    """Interrupts training after ``step`` (like a crash right after a checkpoint)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


def test_resume_from_checkpoint_continues_step_counter_and_loss_curve(stories_txt, tmp_path):
    common = [
        SMOKE,
        "--train_file",
        stories_txt,
        *TINY,
        "--max_steps",
        "16",
        "--save_steps",
        "8",
        "--eval_strategy",
        "no",
    ]
    full = str(tmp_path / "full")
    main([*common, "--output_dir", full])

    interrupted = str(tmp_path / "interrupted")
    run(parse_train_args([*common, "--output_dir", interrupted]), callbacks=[StopAt(8)])
    assert train_losses(interrupted).keys() == set(range(1, 9))
    with pytest.raises(ValueError, match="already holds checkpoints"):
        main([*common, "--output_dir", interrupted])  # never silently restart over a run's checkpoints

    # a run killed while writing its next checkpoint leaves a folder without trainer_state.json: it is skipped
    partial = os.path.join(interrupted, "checkpoint-12")
    os.makedirs(partial)
    open(os.path.join(partial, "model.safetensors"), "wb").write(b"trunc")
    resumed = main([*common, "--output_dir", interrupted, "--resume_from_checkpoint", "true"])
    assert resumed["global_step"] == 16
    assert resumed["num_input_tokens_seen"] == 16 * 8 * 64  # the counter continues from the checkpoint's
    expected, got = train_losses(full), train_losses(interrupted)
    assert sorted(got) == list(range(1, 17))
    for step in range(9, 17):  # the resumed half retraces the uninterrupted run
        assert got[step] == pytest.approx(expected[step], rel=1e-3), (step, got[step], expected[step])


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("base")
    path = write_v2(folder / "stories.txt", make_stories(120))
    out = str(folder / "model")
    main(
        [
            SMOKE,
            "--train_file",
            path,
            *TINY,
            "--max_steps",
            "10",
            "--save_strategy",
            "no",
            "--eval_strategy",
            "no",
            "--output_dir",
            out,
        ]
    )
    return out, path


def test_lora_trains_only_adapters_and_merges(base_model, tmp_path):
    base, data = base_model
    lora = [
        "--model_name_or_path",
        base,
        "--train_file",
        data,
        "--block_size",
        "64",
        "--use_peft",
        "--lora_r",
        "4",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
        "c_fc",
        "--learning_rate",
        "1e-2",
        "--max_steps",
        "8",
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--report_to",
        "none",
    ]
    adapters = main([*lora, "--output_dir", str(tmp_path / "adapters")])
    # r * (in + out) per adapted matrix: q, v (32x32) and c_fc (32->128) in each of 2 layers
    assert adapters["num_trainable_parameters"] == 2 * 4 * ((32 + 32) * 2 + (32 + 128))
    assert adapters["num_parameters"] > 10 * adapters["num_trainable_parameters"]
    assert os.path.isfile(tmp_path / "adapters" / "adapter_config.json")

    merged = main([*lora, "--merge_lora", "--output_dir", str(tmp_path / "merged")])
    assert merged["num_trainable_parameters"] == adapters["num_trainable_parameters"]
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")  # a stock GPT-Neo: no peft needed
    assert not any("lora" in name for name in plain.state_dict())
    from peft import PeftModel

    with_adapters = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), tmp_path / "adapters")
    original = AutoModelForCausalLM.from_pretrained(base)
    ids = AutoTokenizer.from_pretrained(tmp_path / "merged")("Once upon a time, Tom", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        merged_logits = plain.eval()(ids).logits
        adapter_logits = with_adapters.eval()(ids).logits
        base_logits = original.eval()(ids).logits
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-4)  # same training, merged == adapters
    assert not torch.allclose(merged_logits, base_logits, atol=1e-3)  # and the adapters did change the model


@pytest.mark.distributed
def test_two_process_training_counts_both_ranks(stories_txt, tmp_path):
    out = tmp_path / "ddp"
    proc = launch_two_cpu_processes(
        [SMOKE, "--train_file", stories_txt, *TINY, "--max_steps", "6", "--per_device_train_batch_size", "4"]
        + ["--save_strategy", "no", "--eval_strategy", "no", "--output_dir", str(out)]
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = read_results(out)
    assert results["world_size"] == 2
    # 6 steps x 4 sequences x 64 tokens on EACH of the 2 ranks, gathered across processes
    assert results["num_input_tokens_seen"] == 6 * 4 * 64 * 2
    assert results["tokens_per_step"] == 4 * 64 * 2
    assert "Process rank 0 of 2" in proc.stdout
    # ddp_find_unused_parameters is false by default: no extra autograd traversal, no warning about it
    assert "find_unused_parameters=True" not in proc.stdout + proc.stderr


def test_cli_errors_are_one_clear_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_preset: 1M\ntrain_file: nope.txt\nlearning_rat: 1\n")
    proc = subprocess.run(["tinystories", "train", str(recipe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "tinystories train: error: Unknown key in recipe: 'learning_rat'" in proc.stderr
    assert "Traceback" not in proc.stderr
    recipe.write_text(
        f"model_preset: 1M\ntrain_file: {tmp_path / 'missing.txt'}\ntokenizer_vocab_size: 300\n"
        f"output_dir: {tmp_path / 'o'}\n"
    )
    proc = subprocess.run(["tinystories", "train", str(recipe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Data file not found" in proc.stderr


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16: bf16 runs train in fp32 here")
def test_bf16_autocast_training_on_cpu_stays_close_to_fp32(stories_txt, tmp_path):
    common = [
        SMOKE,
        "--train_file",
        stories_txt,
        *TINY,
        "--max_steps",
        "12",
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--attn_implementation",
        "sdpa",
    ]
    fp32 = main([*common, "--output_dir", str(tmp_path / "fp32")])
    bf16 = main([*common, "--bf16", "--output_dir", str(tmp_path / "bf16")])
    assert fp32["train_loss"] > 0 and bf16["train_loss"] > 0
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    curve_fp32, curve_bf16 = train_losses(tmp_path / "fp32"), train_losses(tmp_path / "bf16")
    assert curve_fp32.keys() == curve_bf16.keys() == set(range(1, 13))
    for step in curve_fp32:
        assert abs(curve_bf16[step] - curve_fp32[step]) < 0.02 * curve_fp32[step], (step, curve_fp32, curve_bf16)
    assert abs(bf16["eval_loss"] - fp32["eval_loss"]) < 0.02 * fp32["eval_loss"]


def test_bf16_on_a_cpu_without_native_bf16_warns_once_and_trains_in_fp32(stories_txt, tmp_path, monkeypatch, caplog):
    import tinystories.training.precision as precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)  # an AVX2-only CPU
    common = [SMOKE, "--train_file", stories_txt, *TINY, "--max_steps", "2", "--save_strategy", "no"]
    common += ["--eval_strategy", "no", "--bf16", "true"]
    with caplog.at_level(logging.WARNING):
        results = main([*common, "--output_dir", str(tmp_path / "fallback")])
    warnings = [r.getMessage() for r in caplog.records if "without native bf16" in r.getMessage()]
    assert len(warnings) == 1 and "trains in fp32" in warnings[0], warnings
    assert results["precision"] == "fp32"
    with open(tmp_path / "fallback" / "recipe.yaml") as f:
        assert "bf16: false" in f.read()  # the recipe records what ran
    caplog.clear()
    kept = main([*common, "--bf16_on_slow_cpu", "--output_dir", str(tmp_path / "kept")])
    assert kept["precision"] == "bf16" and not [r for r in caplog.records if "without native bf16" in r.getMessage()]


def test_native_bf16_detection_reads_the_cpu_flags(monkeypatch):
    import tinystories.training.precision as precision

    assert isinstance(precision.cpu_has_native_bf16(), bool)
    flags = precision._cpuinfo_flags()
    if flags:  # Linux: torch's answer agrees with the kernel's flags
        assert precision.cpu_has_native_bf16() == bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.cpu_precision_note(True, "no") is None
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert "bf16: true" in precision.cpu_precision_note(True, "no")
    assert "mixed_precision: bf16" in precision.cpu_precision_note(False, "bf16")  # an accelerate config's setting
    assert precision.cpu_precision_note(False, "no") is None


def test_ddp_find_unused_parameters_is_false_unless_set():
    assert parse_train_args([SMOKE]).training.ddp_find_unused_parameters is False
    assert parse_train_args([SMOKE, "--ddp_find_unused_parameters", "true"]).training.ddp_find_unused_parameters
