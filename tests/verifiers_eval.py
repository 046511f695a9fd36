"""verifiers' own evaluation (`run_eval`, what `vf-eval` runs) of an lbi environment, for tests.

Runs in the verifiers virtualenv (`.venv-verifiers`: verifiers 0.4.0 and lbi's core):

    .venv-verifiers/bin/python tests/verifiers_eval.py ENV SUITE gold|empty OUT_DIR

The model is a scripted one behind an OpenAI-compatible server on 127.0.0.1: `gold` answers
each task's reference actions in order (what the suite says solves it), `empty` hands in at once
(the environment's `finish` action). Prints one JSON line: {task name: lbi_success reward}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from verifiers.v1.cli.eval.runner import run_eval
from verifiers.v1.configs.cli.eval import EvalConfig

from lbi.config import load_config
from lbi.envs.base import make_env


def policy(env_spec: str, suite: str, mode: str) -> dict[str, list[str]]:
    """Objective -> the actions the scripted model answers, in order."""
    env = make_env(env_spec, load_config(None, [f"env={env_spec}"]))
    try:
        finish = env.action_space().finish or "submit"
        return {
            t.instruction: (list(t.reference) if mode == "gold" else [finish])
            for t in env.load_suite(suite)
        }
    finally:
        env.close()


def serve(actions: dict[str, list[str]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            messages: list[dict[str, Any]] = body["messages"]
            opening = next(str(m["content"]) for m in messages if m["role"] == "user")
            objective = opening.split("\n", 1)[0].removeprefix("OBJECTIVE: ")
            done = sum(m["role"] == "assistant" for m in messages)
            script = actions.get(objective) or ["submit"]
            text = f"REASON: step {done + 1} of the script.\nACTION: {script[min(done, len(script) - 1)]}"
            answer = {
                "id": f"fake-{done}",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
            raw = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    env_spec, suite, mode, out = sys.argv[1:5]
    server = serve(policy(env_spec, suite, mode))
    os.environ["LBI_VF_FAKE_KEY"] = "sk-fake"
    config = EvalConfig.model_validate(
        {
            "env": {"taskset": {"id": "lbi-verifiers", "env": env_spec, "suite": suite}},
            "model": "fake",
            "client": {
                "type": "eval",
                "base_url": f"http://127.0.0.1:{server.server_address[1]}/v1",
                "api_key_var": "LBI_VF_FAKE_KEY",
            },
            "push": False,
            "rich": None,
            "output_dir": out,
        }
    )
    episodes = asyncio.run(run_eval(config))
    scores = {}
    for episode in episodes:
        trace = episode.traces[0]
        reward = trace.rewards.get("lbi_success")
        scores[trace.task.data.name] = None if reward is None else reward.score
    server.shutdown()
    print(json.dumps(scores, sort_keys=True))


if __name__ == "__main__":
    main()
