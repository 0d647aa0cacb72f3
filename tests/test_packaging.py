"""The wheel: it carries every module and the package data the code reads (card templates, vocabulary, example
stories, evaluation sets, the GPT-Eval metric module), and, installed (not editable), the templates are read from it.

The wheel is built from a copy of the working tree (so no build/ or egg-info lands in the checkout) with
``pip wheel --no-build-isolation``: offline, with the setuptools installed here.
"""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow

NOT_SOURCES = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "outputs", "runs", "tinystories-demo", "*venv*"
)


def files_under(folder: str) -> list[str]:
    """Paths of the files of ``REPO/folder``, relative to it (caches left out)."""
    root = os.path.join(REPO, folder)
    return sorted(
        os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
        for dirpath, dirnames, names in os.walk(root)
        if "__pycache__" not in dirpath
        for name in names
        if not name.endswith(".pyc")
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
        + ["-w", str(root / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (path,) = (root / "dist").glob("tinystories-*.whl")
    return path


def test_the_wheel_carries_every_module_and_the_package_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {f"tinystories/{p}" for p in files_under("tinystories") if p.endswith(".py")}
    expected |= {f"tinystories/hub_cards/{p}" for p in files_under("hub_cards")}
    expected |= {f"tinystories/resources/eval/{p}" for p in files_under("tinystories/resources/eval")}
    expected |= {f"tinystories/metrics/gpt_eval/{p}" for p in files_under("tinystories/metrics/gpt_eval")}
    expected |= {"tinystories/resources/vocabulary.json", "tinystories/resources/example_stories.txt"}
    # the files the code opens by name, should the folders above ever be emptied
    for name in (
        "tinystories/hub_cards/model_card.md",
        "tinystories/hub_cards/dataset_card.md",
        "tinystories/hub_cards/metric_card.md",
        "tinystories/hub_cards/metric_app.py",
        "tinystories/hub_cards/metric_requirements.txt",
        "tinystories/resources/eval/README.md",
        "tinystories/metrics/gpt_eval/gpt_eval.py",
        "tinystories/metrics/gpt_eval/README.md",
    ):
        assert name in expected, name
    assert any(n.startswith("tinystories/resources/eval/") and n.endswith(".jsonl") for n in expected)
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing}"
    assert not [n for n in names if n.startswith(("tests/", "hub_cards/", "recipes/"))]  # only the package


def test_the_installed_wheel_reads_its_own_templates(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    check = (
        "import importlib.resources, os, tinystories\n"
        "from tinystories.hub.templates import card_template\n"
        "from tinystories.metrics import GPT_EVAL\n"
        "print(tinystories.__file__)\n"
        "print(importlib.resources.files('tinystories').joinpath('hub_cards', 'model_card.md').is_file())\n"
        "print(os.path.isfile(os.path.join(GPT_EVAL, 'gpt_eval.py')))\n"
        "print(card_template('model_card.md'), end='')\n"
    )
    run = subprocess.run([python, "-c", check], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    module_file, template_installed, metric_installed, template = run.stdout.split("\n", 3)
    assert module_file.startswith(str(venv)), module_file  # the wheel's package, not the editable checkout
    assert template_installed == "True" and metric_installed == "True"
    with open(os.path.join(REPO, "hub_cards", "model_card.md"), encoding="utf-8") as f:
        assert template == f.read()
