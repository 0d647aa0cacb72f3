"""``tinystories generate`` at two sizes against the scripted OpenAI-compatible server (zero latency): wall time,
stories/s and the generator process's peak RSS at each size, their ratios, and a bare ``AsyncOpenAI`` loop at the
same concurrency against the same server as the throughput baseline.

The server runs in its own process, and so does each generator run and the bare loop (a fresh process each: the
peak RSS of one is not inflated by another, and the server's CPU and memory are not counted). Every run starts with
an empty output folder and request cache, so every story is requested. Both clocks start after the imports; the
generator's counts everything else (vocabulary, prompts, cache, filters, dedup, Parquet shards, the card). Targets
(issue 13): peak RSS at the large size at most 1.3x that at the small one (memory holds one chunk, whatever
``num_stories``); stories/s at least 0.9x the bare loop's requests/s.

    python benchmarks/generation_scale.py                         # 2,000 and 20,000 stories, 64 in flight
    python benchmarks/generation_scale.py --sizes 1000 5000 --chunk_size 1000
    python benchmarks/generation_scale.py --repeats 3           # a noisy machine: the median of three ratios
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from openai_server import FakeOpenAIServer
with FakeOpenAIServer() as server:
    print(server.base_url, flush=True)
    while True:
        time.sleep(3600)
"""

GENERATOR = """
import json, resource, sys, time
import openai  # imported before the clock, as the bare loop does (the engine imports it at its first run)
from tinystories.synth import parse_generate_args, run
args = parse_generate_args(json.loads(sys.argv[1]))
start = time.perf_counter()
summary = run(args)
elapsed = time.perf_counter() - start
print("RESULT " + json.dumps({{"seconds": elapsed, "kept": summary["filters"]["kept"],
      "sent": summary["engine"]["stories"]["sent"], "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

BARE = """
import asyncio, json, resource, sys, time
from openai import AsyncOpenAI
from tinystories.synth.prompts import PromptSampler
from tinystories.synth.vocabulary import load_vocabulary
base_url, n, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sampler = PromptSampler(load_vocabulary(), seed=1)
prompts = [sampler.prompt(i).prompt for i in range(n)]

async def main():
    client = AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0, timeout=600)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(prompt):
        async with semaphore:
            reply = await client.chat.completions.create(
                model="fake-gpt", messages=[{{"role": "user", "content": prompt}}], max_tokens=800, temperature=1.0
            )
            return reply.choices[0].message.content

    start = time.perf_counter()
    texts = await asyncio.gather(*(one(p) for p in prompts))
    elapsed = time.perf_counter() - start
    await client.close()
    assert all(texts)
    return elapsed

elapsed = asyncio.run(main())
print("RESULT " + json.dumps({{"seconds": elapsed, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _result(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    if done.returncode:
        raise SystemExit(f"{command[:3]} failed:\n{done.stderr[-3000:]}")
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


def generator_run(base_url: str, n: int, concurrency: int, chunk_size: int | None, folder: str) -> dict:
    folder = tempfile.mkdtemp(dir=folder)  # a fresh output folder and cache for every run
    argv = [
        *("--model", "fake-gpt", "--base_url", base_url, "--num_stories", str(n)),
        *("--output_dir", os.path.join(folder, "data"), "--max_concurrency", str(concurrency)),
        *("--min_words", "10", "--max_out_of_vocabulary", "0.6", "--dedup_threshold", "0.97"),
        *(("--chunk_size", str(chunk_size)) if chunk_size else ()),
    ]
    return _result([sys.executable, "-c", GENERATOR.format(), json.dumps(argv)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[2000, 20000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--chunk_size", type=int, default=None, help="default: GenerateArguments' default")
    parser.add_argument("--bare_requests", type=int, default=None, help="default: the large size")
    parser.add_argument(
        "--repeats", type=int, default=1, help="large runs, each between two bare loops (the median ratio is given)"
    )
    options = parser.parse_args()
    small_n, large_n = options.sizes
    bare_n = options.bare_requests or large_n

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(tests=os.path.join(REPO, "tests"))], stdout=subprocess.PIPE, text=True
    )
    try:
        base_url = server.stdout.readline().strip()
        bare_command = [sys.executable, "-c", BARE.format(), base_url, str(bare_n), str(options.concurrency)]
        with tempfile.TemporaryDirectory() as folder:  # the machine may be shared: bare, small, (large, bare) x R
            bares = [_result(bare_command)]
            small = generator_run(base_url, small_n, options.concurrency, options.chunk_size, folder)
            larges = []
            for _ in range(options.repeats):
                larges.append(generator_run(base_url, large_n, options.concurrency, options.chunk_size, folder))
                bares.append(_result(bare_command))
    finally:
        server.terminate()
        server.wait()

    print(f"chunk_size {options.chunk_size or 'default'}, {options.concurrency} in flight, zero-latency server")
    print(f"{'run':<18}{'wall s':>9}{'stories/s':>11}{'peak RSS MB':>13}{'kept':>8}")

    def row(name: str, n: int, r: dict) -> None:
        kept = f"{r['kept']:>8}" if "kept" in r else ""
        print(f"{name:<18}{r['seconds']:>9.1f}{n / r['seconds']:>11.1f}{r['rss_mb']:>13.0f}{kept}")

    row("bare loop", bare_n, bares[0])
    row(f"generate {small_n:,}", small_n, small)
    for large, bare in zip(larges, bares[1:]):
        row(f"generate {large_n:,}", large_n, large)
        row("bare loop", bare_n, bare)
    rates = [bare_n / b["seconds"] for b in bares]
    # each large run against the mean of the bare loops just before and just after it
    ratios = [large_n / r["seconds"] / ((rates[i] + rates[i + 1]) / 2) for i, r in enumerate(larges)]
    large_rss = max(r["rss_mb"] for r in larges)
    print(f"peak RSS {large_n:,} / {small_n:,}: {large_rss / small['rss_mb']:.2f}x (target <= 1.3x)")
    listed = ", ".join(f"{x:.2f}x" for x in ratios)
    print(f"stories/s {large_n:,} / bare loop: {statistics.median(ratios):.2f}x median of {listed} (target >= 0.9x)")
    print(f"stories/s {small_n:,} / bare loop: {small_n / small['seconds'] / ((rates[0] + rates[1]) / 2):.2f}x")


if __name__ == "__main__":
    main()
