"""Shared fixtures: small stories written for the tests, the real V2 sample when present, a small tokenizer."""

import itertools
import os
import random
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V2_SAMPLE = os.path.join(REPO, "..", "shared", "data", "tinystories_v2_sample.txt")
#: The smoke training recipe, and the overrides that make it a few-second run (a 2-layer, 32-wide model, 64-token
#: blocks, a 300-token BPE).
SMOKE = os.path.join(REPO, "recipes", "smoke", "pretrain.yaml")
TINY = [
    *("--config_overrides", "{hidden_size: 32, num_layers: 2, max_position_embeddings: 64}"),
    *("--block_size", "64", "--tokenizer_vocab_size", "300", "--logging_steps", "1", "--report_to", "none"),
]

_NAMES = ["Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Sam", "Anna"]
_FRIENDS = ["a little dog", "a red bird", "a big bear", "a small cat", "a kind frog", "an old owl"]
_PLACES = ["the park", "the garden", "the big tree", "the pond", "the beach", "the farm"]
_THINGS = ["a shiny ball", "a blue kite", "a soft hat", "a yummy cake", "a tiny boat", "a funny box"]
_ENDINGS = [
    "They were very happy and played all day.",
    "From that day on, they were best friends.",
    "Mom said they were good helpers, and they smiled.",
    "It was the best day ever.",
]


def make_stories(n: int, seed: int = 0) -> list[str]:
    """``n`` short, simple stories (two paragraphs, a line of dialogue) built from word lists."""
    rng = random.Random(seed)
    combos = list(itertools.product(_NAMES, _FRIENDS, _PLACES, _THINGS))
    rng.shuffle(combos)
    stories = []
    for i in range(n):
        name, friend, place, thing = combos[i % len(combos)]
        stories.append(
            f"Once upon a time, {name} went to {place}. There {name} met {friend}. "
            f"{friend.capitalize()} had {thing}.\n"
            f'"Can I play with {thing}?" asked {name}. "Yes, let us play together," said {friend}. '
            f"{rng.choice(_ENDINGS)}"
        )
    return stories


def write_v2(path, stories) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for story in stories:
            f.write(f"{story}\n<|endoftext|>\n")
    return str(path)


def launch_two_cpu_processes(train_args: list[str]) -> subprocess.CompletedProcess:
    """``accelerate launch`` of ``tinystories.train`` on 2 CPU processes (DDP over gloo), output captured.

    PET_STANDALONE=1 is torchrun's --standalone, which accelerate launch passes on: the rendezvous store binds port 0
    and the workers read its port back (no free port picked first and bound later, by anyone)."""
    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m", "tinystories.train"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PET_STANDALONE": "1"}
    return subprocess.run(
        [*launch, *train_args, "--use_cpu"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def assert_png_of(path, figure, dpi):
    """The PNG at ``path`` decodes to an image of ``figure``'s size at ``dpi``, drawn on (not a blank canvas)."""
    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(path, format="png")
    width, height = (figure.get_size_inches() * dpi).round().astype(int)
    assert pixels.shape[:2] == (height, width), (pixels.shape, width, height)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 16, len(colours)  # bars, text and anti-aliased edges: many colours


@pytest.fixture(autouse=True)
def _environment_restored():
    """Credentials and endpoints set by a test without monkeypatch (``os.environ.setdefault(...)``) do not leak into
    the tests after it: each test starts with the values the session started with."""
    names = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN")
    saved = {name: os.environ.get(name) for name in names}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def stories():
    return make_stories(120)


@pytest.fixture
def stories_txt(tmp_path, stories):
    return write_v2(tmp_path / "stories.txt", stories)


@pytest.fixture(scope="session")
def v2_sample():
    if not os.path.isfile(V2_SAMPLE):
        pytest.skip(f"the TinyStories V2 sample is not at {V2_SAMPLE} (../shared/data beside the repository)")
    return V2_SAMPLE


@pytest.fixture(scope="session")
def small_tokenizer():
    from tinystories.tokenization import train_tokenizer

    return train_tokenizer(make_stories(300, seed=1), vocab_size=400)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A GPT-Neo of 32 hidden units and 2 layers trained for 30 steps on the test stories, with its BPE tokenizer
    and ``all_results.json``: a real training output folder for the evaluate, serve and push tests."""
    from tinystories.training import parse_train_args, run

    root = tmp_path_factory.mktemp("tiny_model")
    train_file = write_v2(root / "stories.txt", make_stories(200, seed=3))
    out = str(root / "model")
    cfg = parse_train_args(
        [
            os.path.join(REPO, "recipes", "smoke", "pretrain.yaml"),
            "--train_file",
            train_file,
            "--output_dir",
            out,
            "--config_overrides",
            "{hidden_size: 32, num_layers: 2, num_heads: 2, max_position_embeddings: 1024}",
            "--block_size",
            "64",
            "--tokenizer_vocab_size",
            "300",
            "--max_steps",
            "30",
            "--per_device_train_batch_size",
            "8",
            "--learning_rate",
            "3e-3",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
        ]
    )
    run(cfg)
    return out
