"""``tinystories serve`` throughput: 32 concurrent completion requests, one at a time vs batched.

Two servers run the same model side by side, each in its own process: one with ``--max_batch_size 1`` (every
request is its own ``generate`` call, as a server without batching runs them) and one batching up to
``--max_batch_size`` rows. The same burst of concurrent requests (``AsyncOpenAI``, real HTTP) goes to each in
alternating rounds; every reply is exactly ``max_tokens`` long (EOS is banned with ``logit_bias``), and the
medians of requests/s and generated tokens/s are printed with the ratio batched / one at a time, and the load
average before and after (run it on an otherwise idle machine: other work skews every number).

Without ``--model`` a fresh GPT-Neo of the preset's shape is built (random weights: speed does not depend on what
the weights say) with a byte-level BPE tokenizer trained on the bundled example stories.

    python benchmarks/serve_throughput.py                          # 8M shape, 32 requests x 64 tokens
    python benchmarks/serve_throughput.py --preset 1M --requests 64 --max_tokens 128
    python benchmarks/serve_throughput.py --model path/to/trained/model
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_model_folder(folder: str, preset: str, vocab_size: int, positions: int) -> str:
    from tinystories.demo import bundled_stories_path
    from tinystories.models import build_model, tinystories_config
    from tinystories.story_formats import iter_stories
    from tinystories.tokenization import train_tokenizer

    tokenizer = train_tokenizer(list(iter_stories(bundled_stories_path())), vocab_size=vocab_size)
    config = tinystories_config(
        preset, vocab_size=len(tokenizer), max_position_embeddings=positions, bos_token_id=0, eos_token_id=0
    )
    build_model(config, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def bare_generate(model_path: str, requests: int, max_tokens: int, eos_id: int, rounds: int) -> float:
    """Median seconds of the same rows as ONE ``model.generate`` call in this process: the ceiling, no HTTP."""
    import torch
    from transformers import AutoTokenizer

    from tinystories.models import load_model

    model, tokenizer = load_model(model_path), AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "left"
    prompts = [f"Once upon a time, child number {i} went to the park and" for i in range(requests)]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    times = []
    for _ in range(rounds + 1):  # the first is a warm-up
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                **batch,
                do_sample=True,
                top_k=0,
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                pad_token_id=eos_id,
                suppress_tokens=[eos_id],
            )
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def load() -> str:
    """The 1, 5 and 15 minute load averages (``uptime``'s)."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def health(root: str) -> dict:
    with urllib.request.urlopen(f"{root}/health", timeout=5) as response:
        return json.load(response)


def start_server(model: str, max_batch_size: int, log_dir: str) -> tuple[subprocess.Popen, str]:
    """A server on a port the OS picks (``--port 0``); its log file (the URL is read from it by ``wait_ready``)."""
    log_path = os.path.join(log_dir, f"server-{max_batch_size}.log")
    command = [sys.executable, "-m", "tinystories", "serve", model, "--port", "0", "--log_level", "info"]
    command += ["--max_batch_size", str(max_batch_size), "--served_model_name", "bench"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    return process, log_path


def wait_ready(process: subprocess.Popen, log_path: str) -> str:
    """The server's root URL once ``/health`` answers (the URL is the one its log names at start)."""
    deadline = time.monotonic() + 120
    while True:
        match = re.search(r"Serving \S+ .* at (http://\S+)/v1", open(log_path, encoding="utf-8").read())
        try:
            if match:
                health(match.group(1))
                return match.group(1)
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start; its log: {log_path}")
        time.sleep(0.2)


async def burst(root: str, requests: int, max_tokens: int, eos_id: int) -> tuple[float, int]:
    """Seconds for ``requests`` concurrent completions, and the tokens they generated."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{root}/v1", api_key="sk-bench", max_retries=0, timeout=600)

    async def one(i: int) -> int:
        reply = await client.completions.create(
            model="bench",
            prompt=f"Once upon a time, child number {i} went to the park and",
            max_tokens=max_tokens,
            temperature=1.0,
            logit_bias={str(eos_id): -100},
        )
        return reply.usage.completion_tokens

    start = time.perf_counter()
    tokens = await asyncio.gather(*(one(i) for i in range(requests)))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed, sum(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="A model folder to serve (default: a fresh model of --preset's shape).")
    parser.add_argument("--preset", default="8M")
    parser.add_argument("--vocab_size", type=int, default=4096)
    parser.add_argument("--requests", type=int, default=32, help="Concurrent requests in a burst.")
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--max_batch_size", type=int, default=32, help="Rows per generate call when batching.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_model_folder(os.path.join(tmp, "model"), args.preset, args.vocab_size, 512)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model)
        eos_id = tokenizer.eos_token_id or 0
        started = {
            "one at a time": start_server(model, 1, tmp),
            "batched": start_server(model, args.max_batch_size, tmp),
        }
        servers: dict[str, tuple[subprocess.Popen, str]] = {}
        try:
            for name, (process, log_path) in started.items():
                servers[name] = (process, wait_ready(process, log_path))
                asyncio.run(burst(servers[name][1], 2, 4, eos_id))  # untimed warm-up: first-call costs
            described = args.model or f"a fresh {args.preset}-shaped GPT-Neo (vocab {len(tokenizer)})"
            print(
                f"{described}: {args.requests} concurrent completions x {args.max_tokens} tokens, temperature 1, "
                f"{os.cpu_count()} cores shared by the client and the server; load average before: {load()}"
            )
            samples: dict[str, list[tuple[float, int]]] = {name: [] for name in servers}
            for round_index in range(args.rounds):
                order = list(servers) if round_index % 2 == 0 else list(reversed(servers))  # no fixed slot
                for name in order:
                    elapsed, tokens = asyncio.run(burst(servers[name][1], args.requests, args.max_tokens, eos_id))
                    samples[name].append((elapsed, tokens))
                print(
                    f"  round {round_index + 1}: "
                    + ", ".join(f"{n} {args.requests / s[-1][0]:.2f} req/s" for n, s in samples.items())
                )
            ceiling = bare_generate(model, args.requests, args.max_tokens, eos_id, args.rounds)
            print(
                f"\n{'server':<16}{'requests/s':>12}{'tokens/s':>10}{'generate calls':>16}{'max rows':>10}{'ratio':>8}"
            )
            baseline = None
            for name, (_, root) in servers.items():
                seconds = statistics.median(s[0] for s in samples[name])
                tokens = samples[name][0][1]
                stats = health(root)["stats"]
                rate = args.requests / seconds
                baseline = baseline or rate
                print(
                    f"{name:<16}{rate:>12.2f}{tokens / seconds:>10.0f}{stats['generate_calls']:>16}"
                    f"{stats['max_rows_per_call']:>10}{rate / baseline:>7.1f}x"
                )
            tokens = samples["batched"][0][1]
            print(
                f"{'bare generate':<16}{args.requests / ceiling:>12.2f}{tokens / ceiling:>10.0f}{1:>16}"
                f"{args.requests:>10}{args.requests / ceiling / baseline:>7.1f}x   (one model.generate call, no HTTP)"
            )
            batched = args.requests / statistics.median(s[0] for s in samples["batched"])
            print(
                f"batched: {batched / baseline:.1f}x one at a time, {batched * ceiling / args.requests:.0%} of bare generate"
            )
            print(f"load average after: {load()} (other work on the machine skews every number above)")
        finally:
            for process, _ in started.values():
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
