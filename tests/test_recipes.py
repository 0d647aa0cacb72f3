import glob
import os

import pytest
import torch
import yaml
from accelerate.commands.config.config_args import ClusterConfig

from tinystories.errors import RecipeError
from tinystories.models import PRESETS
from tinystories.recipes import RecipeParser
from tinystories.training import ARGUMENT_CLASSES, parse_train_args

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_RECIPES = sorted(glob.glob(os.path.join(REPO, "recipes", "*", "*.yaml")))
GENERATION_RECIPES = [p for p in TRAIN_RECIPES if os.sep + "generation" + os.sep in p]
EVALUATION_RECIPES = [p for p in TRAIN_RECIPES if os.sep + "gpt_eval" + os.sep in p]
TRAIN_RECIPES = [
    p
    for p in TRAIN_RECIPES
    if "accelerate_configs" not in p
    and p not in GENERATION_RECIPES
    and p not in EVALUATION_RECIPES
    and os.sep + "reproduce" + os.sep not in p  # tinystories reproduce recipes: tests/reproduce
]
ACCELERATE_CONFIGS = sorted(glob.glob(os.path.join(REPO, "recipes", "accelerate_configs", "*.yaml")))


def test_every_kind_of_recipe_is_found():
    # the parametrized tests below run once per recipe: an empty list would skip them, not fail them
    assert len(TRAIN_RECIPES) >= len(PRESETS)
    assert GENERATION_RECIPES  # the generation folder exists and holds recipes
    assert len(EVALUATION_RECIPES) >= 2


def test_every_preset_has_a_recipe_and_a_readme_with_its_launch_line():
    for name in PRESETS:
        folder = os.path.join(REPO, "recipes", f"tinystories-{name}")
        assert os.path.isfile(os.path.join(folder, "pretrain.yaml"))
        readme = open(os.path.join(folder, "README.md")).read()
        assert (
            f"accelerate launch --config_file recipes/accelerate_configs/single.yaml -m tinystories.train recipes/tinystories-{name}/pretrain.yaml"
            in readme
        )
    assert {os.path.basename(p) for p in ACCELERATE_CONFIGS} == {
        "single.yaml",
        "ddp.yaml",
        "fsdp.yaml",
        "zero2.yaml",
        "zero3.yaml",
    }


@pytest.mark.parametrize("path", TRAIN_RECIPES, ids=lambda p: os.path.relpath(p, REPO))
def test_training_recipe_parses_with_unknown_keys_rejected(path):
    cfg = parse_train_args([path])
    assert cfg.training.output_dir
    assert cfg.data.block_size > 0
    if "tinystories-" in path:  # the published 33M hyper-parameters are the base of every family
        t = cfg.training
        assert (t.learning_rate, t.weight_decay, t.adam_beta1, t.adam_beta2) == (5e-4, 0.1, 0.9, 0.95)
        assert str(t.lr_scheduler_type.value) == "constant"
        assert cfg.data.block_size == 512
        assert t.per_device_train_batch_size * t.gradient_accumulation_steps * cfg.data.block_size == 655_360
        assert cfg.model.model_preset == os.path.basename(os.path.dirname(path)).removeprefix("tinystories-")


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=os.path.basename)
def test_accelerate_config_parses_with_unknown_keys_rejected(path):
    # ClusterConfig(**mapping) raises TypeError on any key accelerate does not know
    config = ClusterConfig(**yaml.safe_load(open(path)))
    assert config.num_machines == 1
    if os.path.basename(path) == "fsdp.yaml":
        assert config.fsdp_config["fsdp_version"] == 2


def test_unknown_recipe_key_is_rejected_by_name(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_preset: 1M\ntrain_file: x.txt\nlearning_rat: 0.1\n")
    with pytest.raises(RecipeError, match=r"'learning_rat' \(did you mean learning_rate"):
        parse_train_args([str(recipe)])


def test_unknown_override_is_rejected_by_name(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_preset: 1M\ntrain_file: x.txt\n")
    with pytest.raises(RecipeError, match="'max_stepz'"):
        parse_train_args([str(recipe), "--max_stepz", "3"])


def test_overrides_are_typed_and_merged(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model_preset: 1M\nconfig_overrides: {hidden_size: 64, num_layers: 2}\ntrain_file: x.txt\n"
        "learning_rate: 5e-4\nmax_steps: 10\n"
    )
    cfg = parse_train_args(
        [
            str(recipe),
            "--max_steps",
            "20",
            "--bf16",
            "--lora_target_modules",
            "q_proj",
            "v_proj",
            "--config_overrides",
            "{num_layers: 4}",
            "--warmup_steps=0.1",
            "--use_peft",
            "true",
        ]
    )
    assert cfg.training.max_steps == 20
    assert cfg.training.learning_rate == 5e-4  # YAML reads 5e-4 as text: coerced to float
    # bf16 autocast: on the CPU when the machine has no accelerator, on the accelerator when it has one
    has_accelerator = torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())
    assert cfg.training.bf16 is True and cfg.training.use_cpu is (not has_accelerator)
    assert cfg.training.warmup_steps == 0.1
    assert cfg.peft.use_peft is True and cfg.peft.lora_target_modules == ["q_proj", "v_proj"]
    assert cfg.model.config_overrides == {"hidden_size": 64, "num_layers": 4}
    assert parse_train_args([str(recipe)]).training.use_cpu is False  # without bf16 the device is left alone


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max_steps", "ten"], "Bad value for --max_steps"),
        (["--lr_scheduler_type", "wavy"], "choose one of"),
        (["stray"], "overrides are written --key value"),
        (["--model_name_or_path", "x"], "either model_name_or_path"),
        (["--model_preset", "9M"], "Unknown model_preset '9M'"),
        (["--max_steps"], "--max_steps needs a value"),
        (["--train_file", "null"], "Set dataset_name .* or train_file"),
    ],
)
def test_bad_values_get_clear_errors(tmp_path, argv, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_preset: 1M\ntrain_file: x.txt\n")
    with pytest.raises(RecipeError, match=message):
        parse_train_args([str(recipe), *argv])


def test_missing_and_invalid_recipe_files(tmp_path):
    with pytest.raises(RecipeError, match="Recipe not found"):
        parse_train_args([str(tmp_path / "nope.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="must be a mapping"):
        parse_train_args([str(bad)])


def test_help_lists_every_key_with_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        RecipeParser(ARGUMENT_CLASSES).parse(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for key in ("--model_preset", "--tokenizer_vocab_size", "--block_size", "--lora_r", "--max_train_minutes"):
        assert key in out


@pytest.mark.parametrize("path", GENERATION_RECIPES, ids=lambda p: os.path.relpath(p, REPO))
def test_generation_recipe_parses_with_unknown_keys_rejected(path):
    from tinystories.synth import GenerateArguments

    (args,) = RecipeParser(classes=(GenerateArguments,)).parse([path])
    assert args.model and args.num_stories > 0 and args.output_dir


@pytest.mark.parametrize("path", EVALUATION_RECIPES, ids=lambda p: os.path.relpath(p, REPO))
def test_evaluation_recipe_parses_with_unknown_keys_rejected(path):
    from tinystories.evaluation import EvaluateArguments

    (args,) = RecipeParser(classes=(EvaluateArguments,)).parse([path, "--model_name_or_path", "a", "b"])
    assert args.model_name_or_path == ["a", "b"] and args.judge_model and args.num_completions == 10
    assert args.temperature == 1.0 and args.output_dir
    with pytest.raises(RecipeError, match="judge_modle"):
        RecipeParser(classes=(EvaluateArguments,)).parse([path, "--judge_modle", "x"])
