"""LLM engine throughput against the local OpenAI-compatible test server with a fixed latency.

One run prints, for each concurrency, the engine's requests/s beside the ideal (concurrency / latency) and beside a
bare ``AsyncOpenAI`` + semaphore loop (no cache, no retries, no accounting): the practical ceiling of this machine,
where the client and the server share the cores. The server runs in its own process.

    python benchmarks/engine_throughput.py                       # latency 0.2 s, concurrency 1, 16, 64
    python benchmarks/engine_throughput.py --concurrency 8 32 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from openai_server import FakeOpenAIServer
with FakeOpenAIServer(latency={latency}) as server:
    print(server.base_url, flush=True)
    while True:
        time.sleep(3600)
"""


def requests_for(n: int, tag: str) -> list[list[dict]]:
    return [
        [{"role": "user", "content": f'{tag} {i}: the verb "run", the noun "dog" and the adjective "big".'}]
        for i in range(n)
    ]


async def bare_loop(base_url: str, requests, concurrency: int) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(messages):
        async with semaphore:
            await client.chat.completions.create(model="fake-gpt", messages=messages, max_tokens=200)

    start = time.perf_counter()
    await asyncio.gather(*(one(m) for m in requests))
    elapsed = time.perf_counter() - start
    await client.close()
    return len(requests) / elapsed


def engine_rate(base_url: str, requests, concurrency: int, cache_dir: str) -> float:
    from tinystories.llm import LLMConfig, LLMEngine

    engine = LLMEngine(
        LLMConfig(model="fake-gpt", base_url=base_url, max_concurrency=concurrency, cache_dir=cache_dir),
        progress=False,
    )
    start = time.perf_counter()
    results = engine.run(requests, max_tokens=200)
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    return len(requests) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=4.0, help="Ideal duration of each measurement.")
    args = parser.parse_args()

    code = SERVER.format(tests=os.path.join(REPO, "tests"), latency=args.latency)
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
        print(f"server {base_url}, latency {args.latency * 1000:.0f} ms, {os.cpu_count()} cores (client and server)")
        print(
            f"\n{'concurrency':>11}{'ideal':>9}{'bare loop':>11}{'engine':>9}{'engine/ideal':>14}{'engine/bare':>13}"
        )
        for concurrency in args.concurrency:
            ideal = concurrency / args.latency
            n = max(concurrency, int(ideal * args.seconds))
            asyncio.run(bare_loop(base_url, requests_for(concurrency, "warm-up"), concurrency))
            bare = asyncio.run(bare_loop(base_url, requests_for(n, f"bare-{concurrency}"), concurrency))
            with tempfile.TemporaryDirectory() as cache_dir:
                engine = engine_rate(base_url, requests_for(n, f"engine-{concurrency}"), concurrency, cache_dir)
            print(
                f"{concurrency:>11}{ideal:>9.1f}{bare:>11.1f}{engine:>9.1f}{engine / ideal:>14.0%}{engine / bare:>13.0%}"
            )
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
