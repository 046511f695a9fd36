"""Benchmark: how much does the model door add on top of the endpoint's own latency?

Chat calls (10,000 by default) at each concurrency (32, 256 and 1,024 by default) against the
fake OpenAI server (127.0.0.1, a fixed 50 ms per answer, served from its own process so it does
not share an event loop with the client). The ideal wall time is calls * latency / concurrency;
the door's targets are <= 1.05x at 32 and <= 1.10x at 256 (issue 30). The bare
`openai.AsyncOpenAI` client with default settings runs the same load in the same run, for
comparison, and so does the door over its `sdk` transport (the SDK's `client.post`) and over a
backend that only sleeps (the door's own cost). Then the cost of a cache hit through the door
(target < 1 ms), over 10k hits.

    .venv/bin/python bench/model_door.py [--calls 10000] [--rounds 3] [--concurrency 32,256,1024]

Prints the figures and replaces the "## Model door" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
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
TARGETS = {32: "<= 1.05x", 256: "<= 1.10x"}
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


async def sleep_round(tag: str, calls: int, slots: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config("http://127.0.0.1:1/v1", tmp, slots=slots)
        door = ModelDoor(SleepModel(), cfg, CallCache(cfg.cache_path), Accountant(cfg))
        wall = await timed(door.chat, requests(tag, calls))
        await door.aclose()
        door.cache.close()  # type: ignore[union-attr]
    return wall


async def loop_round(tag: str, calls: int, slots: int) -> float:
    """No door: an asyncio semaphore and a 50 ms sleep per call, the floor any client written
    on one asyncio event loop starts from on this machine."""
    limit = asyncio.Semaphore(slots)

    async def call(r: ChatRequest) -> None:
        async with limit:
            await asyncio.sleep(LATENCY)

    return await timed(call, requests(tag, calls))


def make_config(
    base_url: str, cache_dir: str, transport: str = "aiohttp", slots: int = 32
) -> Config:
    return Config.model_validate(
        {
            "models": {
                "openai": {
                    "base_url": base_url,
                    "api_key_env": "LBI_BENCH_NO_KEY",
                    "transport": transport,
                    "max_connections": slots,
                }
            },
            "door": {"concurrency": slots},
            "cache": {"path": str(Path(cache_dir) / "llm.sqlite")},
        }
    )


async def door_round(
    base_url: str, tag: str, calls: int, slots: int, transport: str = "aiohttp"
) -> float:
    """A cold run: every call misses the (fresh) cache, goes to the server and is stored."""
    with tempfile.TemporaryDirectory() as tmp:
        door = open_door("openai:bench", make_config(base_url, tmp, transport, slots))
        await timed(door.chat, requests(f"warm-{tag}", slots * 2))
        wall = await timed(door.chat, requests(tag, calls))
        await door.aclose()
    return wall


async def bare_round(base_url: str, tag: str, calls: int, slots: int) -> float:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY")  # default settings
    limit = asyncio.Semaphore(slots)

    async def call(r: ChatRequest) -> object:
        async with limit:
            return await client.chat.completions.create(
                model="bench",
                messages=r.messages,  # type: ignore[arg-type]
                max_tokens=r.max_tokens,
                temperature=0.0,
            )

    await timed(call, requests(f"warm-{tag}", slots * 2))
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


async def level(
    base_url: str, calls: int, rounds: int, slots: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Wall seconds of each client over `rounds` interleaved rounds at `slots` in flight, and
    each client's CPU milliseconds per call."""
    walls: dict[str, list[float]] = {"door": [], "sdk": [], "bare": [], "sleep": [], "loop": []}
    cpu = dict.fromkeys(walls, 0.0)

    async def measured(side: str, wall: Awaitable[float]) -> None:
        CPU[0] = 0.0
        walls[side].append(await wall)
        cpu[side] += CPU[0]

    for n in range(rounds):  # interleaved, so background load hits every side alike
        tag = f"c{slots}r{n}"
        await measured("door", door_round(base_url, f"door-{tag}", calls, slots))
        await measured("bare", bare_round(base_url, f"bare-{tag}", calls, slots))
        await measured("sdk", door_round(base_url, f"sdk-{tag}", calls, slots, "sdk"))
        await measured("sleep", sleep_round(f"sleep-{tag}", calls, slots))
        await measured("loop", loop_round(f"loop-{tag}", calls, slots))
        print(
            f"concurrency {slots}, round {n}: "
            + "  ".join(f"{side} {w[-1]:.3f}s" for side, w in walls.items())
        )
    per_call = rounds * (calls + 2 * slots)  # warm-up calls included in the count
    return walls, {side: c / per_call * 1000 for side, c in cpu.items()}


CLIENTS = {
    "door": "lbi door (`openai:` backend, `aiohttp` transport, cold cache: every call stored)",
    "sdk": "lbi door, `models.openai.transport=sdk` (the SDK's `client.post`)",
    "bare": "bare `openai.AsyncOpenAI`, default settings, `chat.completions.create`",
    "sleep": "lbi door over a backend that only sleeps 50 ms (no HTTP: the door's own cost)",
    "loop": "no door: an `asyncio.Semaphore` and a 50 ms sleep per call (the event loop's floor)",
}


async def main(calls: int, rounds: int, hits: int, levels: list[int]) -> str:
    where = machine()
    proc, base_url = start_server()
    try:
        results = [(slots, *await level(base_url, calls, rounds, slots)) for slots in levels]
        door_hits, get_hits = await hit_costs(base_url, hits)
    finally:
        proc.terminate()
        proc.wait(10)
    ms = 1000.0
    lines = [
        f"`bench/model_door.py`: {where}; openai {openai.__version__}, aiohttp "
        f"{aiohttp.__version__}; the fake server's event loop: {server_event_loop()} (the machine is "
        "shared, so figures are noisy).",
        "",
        f"{calls:,} calls at each concurrency against the fake OpenAI server (127.0.0.1, own "
        f"process, {LATENCY * ms:.0f} ms per answer); ideal wall = calls x {LATENCY:g} s / "
        f"concurrency. Median (best) of {rounds} interleaved rounds per concurrency. The last wave "
        "is partial, so no client can beat ceil(calls / concurrency) x 50 ms (the floor column).",
        "",
        "| concurrency | client | wall s | ratio to ideal | floor | client CPU ms/call | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for slots, walls, cpu_ms in results:
        ideal = calls * LATENCY / slots
        floor = math.ceil(calls / slots) * LATENCY / ideal
        for side, label in CLIENTS.items():
            w = walls[side]
            med = statistics.median(w)
            target = TARGETS.get(slots, "—") if side == "door" else "—"
            cpu = f"{cpu_ms[side]:.2f}" if side not in ("sleep", "loop") else "—"
            lines.append(
                f"| {slots:,} | {label} | {med:.3f} ({min(w):.3f}) | {med / ideal:.3f}x "
                f"({min(w) / ideal:.3f}x) | {floor:.3f}x | {cpu} | {target} |"
            )
    lines += ["", "What the CPU allows: at the ideal rate (concurrency / 50 ms calls a second), the "
              "door's measured client CPU per call needs this many cores for the client alone "
              "(the fake server shares the same cores):", ""]  # fmt: skip
    for slots, _, cpu_ms in results:
        rate = slots / LATENCY
        lines.append(
            f"- {slots:,} in flight: {rate:,.0f} calls/s x {cpu_ms['door']:.2f} ms = "
            f"{rate * cpu_ms['door'] / ms:.2f} cores; one event loop runs on one core "
            f"(this machine has {os.cpu_count()})"
        )
    lines += [
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
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="32,256,1024", help="comma-separated levels")
    parser.add_argument("--hits", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    body = asyncio.run(main(args.calls, args.rounds, args.hits, levels))
    print(f"## {HEADING}\n\n{body}")
    if not args.no_write:
        write_section(HEADING, body)
        print(f"wrote {RESULTS}")
