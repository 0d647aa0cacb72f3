"""LLM engine throughput against the local OpenAI-compatible test server with a fixed latency.

One run prints, for each concurrency, the engine's requests/s beside the ideal (concurrency / latency) and beside a
bare ``AsyncOpenAI`` + semaphore loop (no cache, no retries, no accounting): the practical ceiling of this machine,
where the client and the server share the cores. The server runs in its own process.

Then a server that is slow the way a real one is (``capacity`` requests served at once, ``service_time`` each, a
queue behind; a client that times out has its request dropped): ``max_concurrency`` 16 against capacity 2, 1 s a
request and ``request_timeout`` 4 s, with adaptive concurrency and without. Ideal: requests / capacity * service time.

    python benchmarks/engine_throughput.py                       # latency 0.2 s, concurrency 1, 16, 64; capacity row
    python benchmarks/engine_throughput.py --concurrency 8 32 --seconds 3
    python benchmarks/engine_throughput.py --only capacity --stories 40
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
with FakeOpenAIServer(latency={latency}, capacity={capacity}, service_time={service_time}) as server:
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


def capacity_run(base_url: str, n: int, adaptive: bool, timeout: float, concurrency: int, cache_dir: str) -> dict:
    """One run of ``n`` stories against the capacity-limited server: wall time and the engine's counts."""
    from tinystories.llm import LLMConfig, LLMEngine

    config = LLMConfig(
        model="fake-gpt",
        base_url=base_url,
        max_concurrency=concurrency,
        request_timeout=timeout,
        adaptive_concurrency=adaptive,
        cache_dir=cache_dir,
    )
    engine = LLMEngine(config, progress=False)
    start = time.perf_counter()
    results = engine.run(requests_for(n, f"capacity-{adaptive}"), max_tokens=200)
    wall = time.perf_counter() - start
    stats = engine.stats.as_dict()
    timeouts = stats["reasons"].get("timeout", {}).get("count", 0)
    return {"wall": wall, "sent": stats["sent"], "timeouts": timeouts, "arrived": sum(r.ok for r in results),
            "concurrency": stats["concurrency"]}  # fmt: skip


def start_server(latency: float, capacity: int | None = None, service_time: float = 0.0):
    code = SERVER.format(
        tests=os.path.join(REPO, "tests"), latency=latency, capacity=capacity, service_time=service_time
    )
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return server, server.stdout.readline().strip()


def capacity_rows(args) -> None:
    server, base_url = start_server(0.0, args.capacity, args.service_time)
    try:
        ideal = args.stories / args.capacity * args.service_time
        print(
            f"\ncapacity-limited server: capacity {args.capacity}, {args.service_time:g} s a request, "
            f"max_concurrency {args.capacity_concurrency}, request_timeout {args.capacity_timeout:g} s, "
            f"{args.stories} stories, ideal {ideal:.1f} s"
        )
        print(f"{'adaptive':>9}{'wall s':>9}{'wall/ideal':>12}{'sent':>7}{'timeouts':>10}{'timeout share':>15}"
              f"{'arrived':>9}  concurrency (final, lowest)")  # fmt: skip
        for adaptive in (True, False):
            with tempfile.TemporaryDirectory() as cache_dir:
                run = capacity_run(
                    base_url, args.stories, adaptive, args.capacity_timeout, args.capacity_concurrency, cache_dir
                )
            conc = run["concurrency"]
            print(
                f"{str(adaptive).lower():>9}{run['wall']:>9.1f}{run['wall'] / ideal:>12.2f}{run['sent']:>7}"
                f"{run['timeouts']:>10}{run['timeouts'] / max(1, run['sent']):>15.0%}{run['arrived']:>9}  "
                f"{conc['final']}, {conc['lowest']}"
            )
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=4.0, help="Ideal duration of each measurement.")
    parser.add_argument(
        "--only", choices=("latency", "capacity"), help="Run only the latency rows or the capacity row."
    )
    parser.add_argument("--stories", type=int, default=40, help="Requests of the capacity-limited run.")
    parser.add_argument("--capacity", type=int, default=2)
    parser.add_argument("--service_time", type=float, default=1.0)
    parser.add_argument("--capacity_concurrency", type=int, default=16)
    parser.add_argument("--capacity_timeout", type=float, default=4.0)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    if args.only != "capacity":
        latency_rows(args)
    if args.only != "latency":
        capacity_rows(args)


def latency_rows(args) -> None:
    server, base_url = start_server(args.latency)
    try:
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
