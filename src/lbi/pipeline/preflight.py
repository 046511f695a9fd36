"""Where a synthesis run's episodes will start, known before its first model call, so the
pre-flight (lbi.envs.preflight) can reset the environment on each of them first: the setup of
every doc chunk tasks are proposed from, and the sample tasks exploration starts from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbi.identity import training_setup
from lbi.pipeline.tasks import doc_chunks
from lbi.types import Task

if TYPE_CHECKING:
    from lbi.config import Config
    from lbi.envs.base import Environment


def synth_starts(config: Config, env: Environment) -> list[Task]:
    cfg = config.synth
    starts: list[Task] = []
    if cfg.task_source in ("docs", "both"):
        chunks = doc_chunks(env, cfg)
        starts += [
            Task(env=env.name, instruction=c.title or c.source, setup=c.setup, origin="docs")
            for c in chunks
        ]
    if cfg.task_source in ("explore", "both"):
        starts += [
            Task(env=env.name, instruction="Explore.", setup=training_setup(t.setup))
            for t in env.sample_tasks()
        ]
    return starts
