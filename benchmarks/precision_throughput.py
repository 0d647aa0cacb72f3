"""Training step time of ``recipes/smoke/pretrain.yaml`` in fp32, with ``--bf16 true``, and with ``--bf16 true`` on a
CPU taken for one without native bf16 (the package then trains in fp32 and warns once), in alternating rounds.

    python benchmarks/precision_throughput.py                       # the smoke recipe's own shape
    python benchmarks/precision_throughput.py --config_overrides "{hidden_size: 256, num_layers: 8}" --block_size 256

Prints seconds per step (median over rounds) and the ratios to fp32. Whether this CPU has native bf16 decides what
``--bf16 true`` does here; the third row shows what a CPU without it gets.
"""

import argparse
import os
import statistics
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_run(extra: list[str], output_dir: str, slow_cpu: bool) -> float:
    import tinystories.training.precision as precision
    from tinystories.train import main

    detected = precision.cpu_has_native_bf16
    if slow_cpu:
        precision.cpu_has_native_bf16 = lambda: False
    try:
        results = main([os.path.join(REPO, "recipes", "smoke", "pretrain.yaml"), "--output_dir", output_dir, *extra])
    finally:
        precision.cpu_has_native_bf16 = detected
    return results["train_runtime"] / results["global_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max_steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--config_overrides", default=None, help="GPTNeoConfig fields (YAML), as in a recipe.")
    parser.add_argument("--block_size", type=int, default=None)
    parser.add_argument("--per_device_train_batch_size", type=int, default=None)
    args = parser.parse_args()

    from tinystories.training.precision import cpu_has_native_bf16

    common = ["--max_steps", str(args.max_steps), "--eval_strategy", "no", "--save_strategy", "no"]
    common += ["--logging_steps", str(args.max_steps), "--disable_tqdm", "true", "--log_level", "warning"]
    if args.config_overrides:
        common += ["--config_overrides", args.config_overrides]
    for key in ("block_size", "per_device_train_batch_size"):
        if getattr(args, key) is not None:
            common += [f"--{key}", str(getattr(args, key))]
    modes = {
        "fp32": ([], False),
        "--bf16 true": (["--bf16", "true"], False),
        "--bf16 true, CPU without native bf16": (["--bf16", "true"], True),
    }
    times: dict[str, list[float]] = {name: [] for name in modes}
    with tempfile.TemporaryDirectory() as tmp:
        one_run(common + ["--max_steps", "2"], os.path.join(tmp, "warmup"), False)
        for r in range(args.rounds):
            for i, (name, (extra, slow)) in enumerate(modes.items()):
                times[name].append(one_run(common + extra, os.path.join(tmp, f"{r}-{i}"), slow))
    print(f"native bf16 on this CPU: {cpu_has_native_bf16()}; {args.max_steps} steps, {args.rounds} rounds")
    fp32 = statistics.median(times["fp32"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:40s} {median:8.4f} s/step   {median / fp32:5.2f}x fp32's step time")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
