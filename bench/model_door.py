"""Benchmark: how much does the model door add on top of the endpoint's own latency?

1,000 chat calls at concurrency 32 against the fake OpenAI server (127.0.0.1, a fixed 50 ms per
answer, served from its own process so it does not share an event loop with the client). The
ideal wall time is calls * latency / concurrency = 1.5625 s; the door's target is <= 1.15x.
The bare `openai.AsyncOpenAI` client with default settings runs the same load in the same run,
for comparison, and so does the door over its `sdk` transport (the SDK's `client.post`). Then
the cost of a cache hit through the door (target < 1 ms), over 10k hits.

    .venv/bin/python bench/model_door.py [--calls 1000] [--rounds 5]

Prints the figures and replaces the "## Model door" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import openai

from lbi.config import Config
from lbi.models.accounting import Accountant
from lbi.models.base import Capabilities, ChatRequest, ChatResponse
from lbi.models.cache import CallCache, cache_key
from lbi.models.door import ModelDoor, open_door
from lbi.testing.fake_openai import server_event_loop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import RESULTS, machine, start_fake_openai, write_section

LATENCY = 0.05
CONCURRENCY = 32
HEADING = "Model door"


def start_server() -> tuple[subprocess.Popen[str], str]:
    return start_fake_openai("--latency", str(LATENCY))


def requests(tag: str, n: int) -> list[ChatRequest]:
    return [
        ChatRequest(messages=[{"role": "user", "content": f"{tag} question {i}"}], max_tokens=32)
        for i in range(n)
    ]


async def timed(call: Callable[[ChatRequest], Awaitable[object]], reqs: list[ChatRequest]) -> float:
    """Wall seconds for all of `reqs`; also adds this process's CPU seconds to CPU[0]."""
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(call(r) for r in reqs))
    CPU[0] += time.process_time() - cpu
    return time.perf_counter() - start


CPU = [0.0]


class SleepModel:
    """A backend that only waits: the door's own overhead with no HTTP underneath."""

    name = "sleep:bench"
    capabilities = Capabilities()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        await asyncio.sleep(LATENCY)
        return ChatResponse(text="ok", prompt_tokens=10, completion_tokens=2)

    async def aclose(self) -> None:
        return None


async def sleep_round(tag: str, calls: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config("http://127.0.0.1:1/v1", tmp)
        door = ModelDoor(SleepModel(), cfg, CallCache(cfg.cache_path), Accountant(cfg))
        wall = await timed(door.chat, requests(tag, calls))
        await door.aclose()
        door.cache.close()  # type: ignore[union-attr]
    return wall


def make_config(base_url: str, cache_dir: str, transport: str = "aiohttp") -> Config:
    return Config.model_validate(
        {
            "models": {
                "openai": {
                    "base_url": base_url,
                    "api_key_env": "LBI_BENCH_NO_KEY",
                    "transport": transport,
                }
            },
            "door": {"concurrency": CONCURRENCY},
            "cache": {"path": str(Path(cache_dir) / "llm.sqlite")},
        }
    )


async def door_round(base_url: str, tag: str, calls: int, transport: str = "aiohttp") -> float:
    """A cold run: every call misses the (fresh) cache, goes to the server and is stored."""
    with tempfile.TemporaryDirectory() as tmp:
        door = open_door("openai:bench", make_config(base_url, tmp, transport))
        await timed(door.chat, requests(f"warm-{tag}", CONCURRENCY * 2))
        wall = await timed(door.chat, requests(tag, calls))
        await door.aclose()
    return wall


async def bare_round(base_url: str, tag: str, calls: int) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY")  # default settings
    slots = asyncio.Semaphore(CONCURRENCY)

    async def call(r: ChatRequest) -> object:
        async with slots:
            return await client.chat.completions.create(
                model="bench",
                messages=r.messages,  # type: ignore[arg-type]
                max_tokens=r.max_tokens,
                temperature=0.0,
            )

    await timed(call, requests(f"warm-{tag}", CONCURRENCY * 2))
    wall = await timed(call, requests(tag, calls))
    await client.close()
    return wall


async def hit_costs(base_url: str, hits: int) -> tuple[list[float], list[float]]:
    """Per-hit seconds through `door.chat`, and for the bare `CallCache.get`."""
    with tempfile.TemporaryDirectory() as tmp:
        door = open_door("openai:bench", make_config(base_url, tmp))
        reqs = requests("hits", 1000)
        await timed(door.chat, reqs)
        door_s: list[float] = []
        for i in range(hits):
            r = reqs[i % len(reqs)]
            t = time.perf_counter()
            await door.chat(r)
            door_s.append(time.perf_counter() - t)
        await door.aclose()
        cache = CallCache(Path(tmp) / "llm.sqlite")  # a fresh object: first gets read SQLite
        keys = [cache_key("openai", "bench", r) for r in reqs]
        get_s: list[float] = []
        for i in range(hits):
            t = time.perf_counter()
            cache.get(keys[i % len(keys)])
            get_s.append(time.perf_counter() - t)
        cache.close()
    return door_s, get_s


def p99(xs: list[float]) -> float:
    return sorted(xs)[int(len(xs) * 0.99) - 1]


async def main(calls: int, rounds: int, hits: int) -> str:
    ideal = calls * LATENCY / CONCURRENCY
    where = machine()
    proc, base_url = start_server()
    try:
        door_walls, bare_walls, sleep_walls, sdk_walls = [], [], [], []
        cpu = {"door": 0.0, "bare": 0.0, "sdk": 0.0}

        async def measured(side: str, walls: list[float], wall: Awaitable[float]) -> None:
            CPU[0] = 0.0
            walls.append(await wall)
            cpu[side] += CPU[0]

        for n in range(rounds):  # interleaved, so background load hits both sides alike
            await measured("door", door_walls, door_round(base_url, f"door{n}", calls))
            await measured("bare", bare_walls, bare_round(base_url, f"bare{n}", calls))
            await measured("sdk", sdk_walls, door_round(base_url, f"sdk{n}", calls, "sdk"))
            sleep_walls.append(await sleep_round(f"sleep{n}", calls))
            print(
                f"round {n}: door {door_walls[-1]:.3f}s  bare openai {bare_walls[-1]:.3f}s  "
                f"door over the SDK {sdk_walls[-1]:.3f}s  "
                f"door over sleep backend {sleep_walls[-1]:.3f}s"
            )
        # client CPU per call (warm-up calls included in the count)
        per_call = rounds * (calls + 2 * CONCURRENCY)
        door_cpu_ms, bare_cpu_ms, sdk_cpu_ms = (cpu[s] / per_call * 1000 for s in cpu)
        door_hits, get_hits = await hit_costs(base_url, hits)
    finally:
        proc.terminate()
        proc.wait(10)
    d_med, b_med = statistics.median(door_walls), statistics.median(bare_walls)
    s_med, k_med = statistics.median(sleep_walls), statistics.median(sdk_walls)
    ms = 1000.0
    lines = [
        f"`bench/model_door.py`: {where}; openai {openai.__version__}, aiohttp "
        f"{aiohttp.__version__}; the fake server's event loop: {server_event_loop()} (the machine is "
        "shared, so figures are noisy).",
        "",
        f"{calls} calls at concurrency {CONCURRENCY} against the fake OpenAI server "
        f"(127.0.0.1, own process, {LATENCY * ms:.0f} ms per answer); "
        f"ideal wall = {calls} x {LATENCY:g} s / {CONCURRENCY} = {ideal:.4f} s. "
        f"Median (best) of {rounds} interleaved rounds. With a {CONCURRENCY}-slot limit the last "
        f"wave is partial, so no client can beat ceil({calls}/{CONCURRENCY}) x {LATENCY:g} s = "
        f"{math.ceil(calls / CONCURRENCY) * LATENCY:.3f} s "
        f"({math.ceil(calls / CONCURRENCY) * LATENCY / ideal:.3f}x).",
        "",
        "| client | wall s | ratio to ideal | client CPU ms/call | target |",
        "|---|---|---|---|---|",
        f"| lbi door (`openai:` backend, default `aiohttp` transport, cold cache: every call "
        f"stored) | {d_med:.3f} ({min(door_walls):.3f}) "
        f"| {d_med / ideal:.3f}x ({min(door_walls) / ideal:.3f}x) | {door_cpu_ms:.2f} | <= 1.15x |",
        f"| lbi door, `models.openai.transport=sdk` (the SDK's `client.post`) | {k_med:.3f} "
        f"({min(sdk_walls):.3f}) | {k_med / ideal:.3f}x ({min(sdk_walls) / ideal:.3f}x) "
        f"| {sdk_cpu_ms:.2f} | — |",
        f"| bare `openai.AsyncOpenAI`, default settings, `chat.completions.create` | {b_med:.3f} "
        f"({min(bare_walls):.3f}) | {b_med / ideal:.3f}x ({min(bare_walls) / ideal:.3f}x) "
        f"| {bare_cpu_ms:.2f} | — |",
        f"| lbi door over a backend that only sleeps 50 ms (no HTTP: the door's own cost) "
        f"| {s_med:.3f} ({min(sleep_walls):.3f}) | {s_med / ideal:.3f}x ({min(sleep_walls) / ideal:.3f}x) "
        f"| — | — |",
        "",
        f"Cache hit, {hits} hits over 1,000 cached requests:",
        "",
        "| path | mean ms | median ms | p99 ms | target |",
        "|---|---|---|---|---|",
        f"| `door.chat` (key hash + lookup + accounting) | {statistics.mean(door_hits) * ms:.4f} "
        f"| {statistics.median(door_hits) * ms:.4f} | {p99(door_hits) * ms:.4f} | < 1 ms |",
        f"| `CallCache.get` on a fresh cache object (first 1,000 from SQLite) "
        f"| {statistics.mean(get_hits) * ms:.4f} | {statistics.median(get_hits) * ms:.4f} "
        f"| {p99(get_hits) * ms:.4f} | — |",
        "",
    ]
    if statistics.mean(door_hits) > p99(door_hits):
        lines += [
            "A mean above the p99 means a few hits were delayed by the OS (other processes on "
            "the shared cores), not by the cache.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="model door overhead benchmark")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hits", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    body = asyncio.run(main(args.calls, args.rounds, args.hits))
    print(f"## {HEADING}\n\n{body}")
    if not args.no_write:
        write_section(HEADING, body)
        print(f"wrote {RESULTS}")
