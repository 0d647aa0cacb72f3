.PHONY: install demo test quality style bench

# The CPU build of torch that lies on the reference machine; on a GPU machine: make install TORCH=torch
TORCH ?= torch==2.13.0
check_dirs := tinystories tests benchmarks setup.py

install:
	pip install "$(TORCH)"
	pip install -e ".[dev]"

demo:
	tinystories demo

test:
	python -m pytest tests

quality:
	ruff check $(check_dirs)
	ruff format --check $(check_dirs)

style:
	ruff check --fix $(check_dirs)
	ruff format $(check_dirs)

bench:
	python benchmarks/train_throughput.py
