"""lbi environments out to verifiers (Prime Intellect's environments hub), tested with 0.4.0.

verifiers finds an environment by its taskset id: `lbi-verifiers` imports this module, which
exports one `Taskset`, one `Env` and one `Harness` (verifiers' discovery rules). Any lbi
environment, with one of its suites or a suite file, is then a verifiers environment:

    vf-eval lbi-verifiers -m MODEL --client.base-url http://127.0.0.1:8000/v1 --no-push \
        --env.taskset.env sql:pets_1 --env.taskset.suite spider-dev-23

- the dataset: the suite's tasks (`--env.taskset.suite`, an lbi suite name or a suite file;
  `limit` the first N);
- each episode: the lbi environment's `reset` opens the conversation (the objective and what the
  agent sees), every model reply is one action (the line after `ACTION:` when it writes lbi's
  REASON/ACTION format, else the whole reply), the observation is the next user turn, until the
  environment ends the episode or `max_steps`;
- the reward (`lbi_success`): the environment's own success check, 1.0 or 0.0, as `lbi eval`
  scores it.

The model is called by `LbiChat`, a chat harness that runs in the evaluation's process (no
program launched, nothing fetched at run time): verifiers' own harnesses bootstrap with `uv`
from PyPI on first use. verifiers pins packages lbi's own environment would move (mcp 2.0,
openai < 3), so it lives in a virtualenv of its own with lbi's core (`make test` makes one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import verifiers.v1 as vf
from openai import AsyncOpenAI
from pydantic import Field
from verifiers.v1.dialects.chat import message_to_wire

from lbi.agents.parse import ParseError, parse_react
from lbi.config import load_config
from lbi.envs.base import Environment, make_env
from lbi.envs.suite_file import with_suite
from lbi.types import Task

# At the top, and the harness defined before the env config that names it: verifiers imports
# this module (half made) to find the harness while that config class is being defined.
__all__ = [
    "LbiChat",
    "LbiChatConfig",
    "LbiData",
    "LbiEnv",
    "LbiEnvConfig",
    "LbiTask",
    "LbiTaskset",
    "LbiTasksetConfig",
]

REWARD = "lbi_success"


class LbiTasksetConfig(vf.TasksetConfig):
    env: str = "toy"
    """The lbi environment, as `--env` takes it (`sql:pets_1`, `toy`, `openenv:URL`)."""
    suite: str | None = None
    """One of the environment's suites, or a suite file (JSONL); default: its first suite."""
    limit: int | None = None
    """Only the suite's first N tasks."""
    max_steps: int = 8
    """Actions per episode."""
    sets: list[str] = Field(default_factory=list)
    """lbi settings, as `--set` takes them (`env_options.sql.data_dir=...`)."""


class LbiData(vf.TaskData):
    env: str
    suite: str
    task: dict[str, Any]
    max_steps: int
    sets: list[str]


class LbiTask(vf.Task[LbiData]):
    pass


def _environment(spec: str, suite: str, sets: list[str]) -> Environment:
    config = load_config(None, [f"env={spec}", *sets])
    return with_suite(lambda: make_env(spec, config), suite)()


def _action(reply: str) -> str:
    """One action from a reply: lbi's ACTION line where the reply has one, else all of it."""
    try:
        return parse_react(reply).action.strip()
    except ParseError:
        return reply.strip()


class LbiTaskset(vf.Taskset[LbiTask, LbiTasksetConfig]):
    def load(self) -> Iterator[LbiTask]:
        config = self.config
        env = _environment(config.env, config.suite or "", config.sets)
        try:
            suite = config.suite or (env.suites() or [""])[0]
            if not suite:
                raise ValueError(f"{config.env} ships no suite: give one (--env.taskset.suite)")
            tasks = env.load_suite(suite)[: config.limit]
            system = (
                f"You act in the environment {config.env!r}, one action per reply.\n"
                f"Actions:\n{env.action_space().description}\n"
                "Reply with exactly one action, or with a line REASON: ... then a line ACTION: ..."
            )
        finally:
            env.close()
        for task in tasks:
            yield LbiTask(
                LbiData(
                    name=task.name or task.id,
                    prompt=None,  # the environment's first observation opens the conversation
                    system_prompt=system,
                    env=config.env,
                    suite=suite,
                    task=task.model_dump(mode="json"),
                    max_steps=config.max_steps,
                    sets=list(config.sets),
                ),
                config.task,
            )


class LbiChatConfig(vf.HarnessConfig):
    pass


class LbiChat(vf.Harness[LbiChatConfig]):
    """One chat completion per turn, in the evaluation's own process (through the endpoint and
    secret verifiers hands a harness, so every call is on its trace)."""

    APPENDS_SYSTEM_PROMPT = True
    SUPPORTS_RESUME = True
    EXECUTES_CODE = False
    NEEDS_CONTAINER = False

    async def launch(  # type: ignore[override]
        self, ctx: Any, trace: Any, runtime: Any, endpoint: str, secret: str, mcp_urls: Any,
        data: Any, **_: Any,
    ) -> vf.ProgramResult:  # fmt: skip
        system, prompt = self.resolve_prompt(data)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        if isinstance(prompt, str):
            messages.append({"role": "user", "content": prompt})
        elif prompt:
            messages += [message_to_wire(m) for m in prompt]
        async with AsyncOpenAI(base_url=endpoint, api_key=secret) as client:
            await client.chat.completions.create(model=ctx.model, messages=messages)  # type: ignore[arg-type]
        return vf.ProgramResult(exit_code=0, stdout="", stderr="")


class LbiEnvConfig(vf.EnvConfig):
    player: vf.AgentConfig = vf.AgentConfig(
        harness={"id": "lbi-verifiers"}, runtime=vf.SubprocessConfig()
    )


class LbiEnv(vf.Env[LbiEnvConfig]):
    async def run(self, task: LbiTask, agents: Any) -> None:
        data = task.data
        lbi_task = Task.model_validate(data.task)
        env = await asyncio.to_thread(_environment, data.env, data.suite, data.sets)
        success = False
        try:
            obs, _ = await asyncio.to_thread(env.reset, lbi_task, 0)
            opening = f"OBJECTIVE: {lbi_task.instruction}\n\nOBSERVATION:\n{obs}"
            async with agents.player.interaction(task) as interaction:
                segment = await interaction.turn(opening)
                for _ in range(data.max_steps):
                    if segment.terminated:
                        break
                    step = await asyncio.to_thread(env.step, _action(segment.last_reply))
                    obs, reward, terminated, truncated, _ = step
                    if terminated or truncated:
                        success = reward >= 1.0
                        break
                    segment = await interaction.turn(f"OBSERVATION:\n{obs}")
        finally:
            await asyncio.to_thread(env.close)
        interaction.trace.record_reward(REWARD, 1.0 if success else 0.0)
