"""tinystories: the TinyStories research program (Eldan & Li, 2023) on the Hugging Face stack.

Install for development (CPU machine; pick the torch build that fits yours):
    pip install torch==2.13.0 && pip install -e ".[dev]"
"""

import re

from setuptools import find_packages, setup

# The dependency table: one place for every requirement and its lower bound; install_requires and extras pick
# from it by name (the pattern of transformers and alignment-handbook).
_deps = [
    "accelerate>=1.10.0",
    "datasets>=4.0.0",
    "evaluate>=0.4.6",
    "huggingface_hub>=1.0.0",
    "openai>=2.0.0",
    "peft>=0.17.0",
    "tokenizers>=0.22.0",
    "torch>=2.4.0",
    "transformers>=5.0.0",
    "pyyaml>=6.0",
    "tqdm>=4.66",
    "matplotlib>=3.7",
    # extras
    "tensorboard>=2.15",
    "pytest>=8.0",
    "ruff>=0.6.0",
    "fastapi>=0.110",
    "uvicorn>=0.29",
]

deps = {b: a for a, b in (re.findall(r"^(([^!=<>~ ]+)(?:[!=<>~ ].*)?$)", x)[0] for x in _deps)}


def deps_list(*pkgs):
    return [deps[pkg] for pkg in pkgs]


install_requires = deps_list(
    "accelerate",
    "datasets",
    "evaluate",
    "huggingface_hub",
    "openai",
    "peft",
    "tokenizers",
    "torch",
    "transformers",
    "pyyaml",
    "tqdm",
    "matplotlib",
)

extras = {}
extras["tensorboard"] = deps_list("tensorboard")
extras["quality"] = deps_list("ruff")
extras["tests"] = deps_list("pytest")
extras["serve"] = deps_list("fastapi", "uvicorn")
extras["dev"] = extras["quality"] + extras["tests"] + extras["tensorboard"] + extras["serve"]

setup(
    name="tinystories",
    version="0.1.0.dev0",
    description="Train, generate data for and evaluate the TinyStories small language models with Hugging Face tools",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    # the card templates stay in the top-level hub_cards/ and install as tinystories/hub_cards/ (package data)
    packages=find_packages(include=["tinystories", "tinystories.*"]) + ["tinystories.hub_cards"],
    package_dir={"tinystories.hub_cards": "hub_cards"},
    package_data={
        "tinystories": [
            "resources/*.txt",
            "resources/*.json",
            "resources/*.md",
            "resources/eval/*",
            "metrics/gpt_eval/*",
        ],
        "tinystories.hub_cards": ["*.md", "*.py", "*.txt"],
    },
    python_requires=">=3.10",
    install_requires=install_requires,
    extras_require=extras,
    entry_points={"console_scripts": ["tinystories=tinystories.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
