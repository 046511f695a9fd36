"""OpenEnv environments in: `--env openenv:URL` learns any OpenEnv server, with no Python.

OpenEnv (`openenv-core`, tested with 0.3.0) serves an environment over HTTP and WebSocket: its
HTTP `/reset` and `/step` make a fresh environment for every request, so an episode lives on one
WebSocket session (`/ws`), where the client sends `{"type": "reset", "data": {...}}` and
`{"type": "step", "data": ACTION}` and gets `{"type": "observation", "data": {"observation":
{...}, "reward": R, "done": D}}` back (or `{"type": "error", "data": {"message", "code"}}`).
`GET /schema` states the action's and the observation's JSON schemas, `GET /metadata` its name,
description and README. lbi speaks that protocol itself (the `websockets` client), so nothing of
openenv-core is imported and lbi's dependencies do not move for it.

How an OpenEnv environment becomes an lbi one (`lbi.envs.gym_adapter.GymTextEnv` does the rest,
with the same `env_options` as `gym:ID`, under `env_options.openenv`):
- actions: where the action has one text field (an echo's `message`, a coding env's `code`),
  an action is that text; otherwise the model writes one JSON object matching the action
  schema, which the description shows. A refused action (invalid JSON, the server's validation
  error) is an error observation, not the end of the episode;
- observations: the one text field of the observation, else each field on a line;
- a task's `setup` goes to the server's reset as its parameters (`seed`, `episode_id` and any
  the environment takes), the episode's seed as `seed`; reward and done are the server's;
- docs: `--docs`, else what `/metadata` states (its description and README).

    lbi synth --env openenv:http://127.0.0.1:8000 --docs docs/
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from lbi.envs.base import EnvError, one_line, register_env
from lbi.envs.gym_adapter import GymOptions, GymTextEnv, read_options
from lbi.types import Doc

if TYPE_CHECKING:
    from lbi.config import Config

TIMEOUT_S = 60.0  # one reset or step on the server


class OpenEnvOptions(GymOptions):
    url: str | None = None  # the server, where `--env openenv` names none (`--url`)


# Fields every OpenEnv action or observation has, beside what the environment defines.
_BASE_FIELDS = frozenset({"metadata", "done", "reward"})


def text_field(schema: dict[str, Any]) -> str | None:
    """The field of an action or observation schema that is its whole content, free text (no
    enum), when it is its only field besides OpenEnv's own (`metadata`, `done`, `reward`)."""
    props = {k: v for k, v in (schema.get("properties") or {}).items() if k not in _BASE_FIELDS}
    if len(props) != 1:
        return None
    ((name, spec),) = props.items()
    if isinstance(spec, dict) and spec.get("type") == "string" and "enum" not in spec:
        return name
    return None


def render_observation(observation: dict[str, Any], field: str | None) -> str:
    if field is not None and isinstance(observation.get(field), str):
        return str(observation[field])
    lines = []
    for key, value in observation.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{key}: {text}")
    return "\n".join(lines)


class OpenEnvSession:
    """A Gymnasium-style game over one OpenEnv server (what `GymTextEnv` wraps): `reset` opens a
    WebSocket session if none is open, `step` sends one action on it."""

    def __init__(self, url: str, *, http: dict[str, Any]) -> None:
        self.url = url
        self.schema = http.get("schema") or {}
        self.metadata = http.get("metadata") or {}
        self.action_field = text_field(self.schema.get("action") or {})
        self.observation_field = text_field(self.schema.get("observation") or {})
        self._ws: Any = None
        self._stack = contextlib.ExitStack()

    # -- the WebSocket session ---------------------------------------------------------------
    def _connect(self) -> Any:
        if self._ws is None:
            from websockets.sync.client import connect

            parts = urlsplit(self.url)
            scheme = "wss" if parts.scheme == "https" else "ws"
            ws_url = urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))
            try:
                self._ws = self._stack.enter_context(
                    connect(ws_url, open_timeout=TIMEOUT_S, max_size=2**24)
                )
            except (OSError, TimeoutError, ValueError) as e:
                raise EnvError(
                    f"openenv: cannot open a session at {ws_url}: {one_line(e)}"
                ) from None
        return self._ws

    def _ask(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        ws = self._connect()
        try:
            ws.send(json.dumps({"type": kind, "data": data}))
            answer = json.loads(ws.recv(timeout=TIMEOUT_S))
        except Exception as e:  # closed, timed out, not JSON: the session is gone
            self.close()
            raise EnvError(
                f"openenv: the server at {self.url} broke the session: {one_line(e)}"
            ) from None
        if not isinstance(answer, dict):
            raise EnvError(f"openenv: the server at {self.url} answered {answer!r}")
        return answer

    # -- the game --------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        data = {**({"seed": seed} if seed is not None else {}), **(options or {})}
        answer = self._ask("reset", data)
        if answer.get("type") == "error":
            message = (answer.get("data") or {}).get("message", answer)
            raise EnvError(f"openenv: the server refused the reset {data}: {message}")
        return self._observe(answer), {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        try:
            data = self._action(action)
        except ValueError as e:
            return f"Error: {e}", 0.0, False, False, {"error": True}
        answer = self._ask("step", data)
        if answer.get("type") == "error":
            said = answer.get("data") or {}
            return f"Error: {said.get('message', said)}", 0.0, False, False, {"error": True}
        result = answer.get("data") or {}
        reward = result.get("reward")
        done = bool(result.get("done"))
        return self._observe(answer), float(reward or 0.0), done, False, {}

    def _action(self, text: str) -> dict[str, Any]:
        if self.action_field is not None:
            return {self.action_field: text}
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(
                "an action is one JSON object matching the action schema; this is not JSON"
            ) from None
        if not isinstance(value, dict):
            raise ValueError("an action is one JSON object matching the action schema")
        return value

    def _observe(self, answer: dict[str, Any]) -> str:
        observation = (answer.get("data") or {}).get("observation") or {}
        return render_observation(observation, self.observation_field)

    def state_digest(self) -> str:
        """The server's own state (`state` on the session), for replay checks."""
        answer = self._ask("state", {})
        state = dict(answer.get("data") or {})
        state.pop("episode_id", None)  # a fresh id each reset: not part of the state
        return json.dumps(state, sort_keys=True)

    def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):  # already gone: nothing to say goodbye to
                ws.send(json.dumps({"type": "close", "data": {}}))
        with contextlib.suppress(Exception):
            self._stack.close()

    # -- what the server states -------------------------------------------------------------
    def action_description(self) -> str:
        action = self.schema.get("action") or {}
        props = {k: v for k, v in (action.get("properties") or {}).items() if k != "metadata"}
        if self.action_field is not None:
            said = (props.get(self.action_field) or {}).get("description") or ""
            return f"Reply with one action: its text is the environment's `{self.action_field}`" + (
                f" ({said})." if said else "."
            )
        shown = {k: v for k, v in action.items() if k not in ("title", "description")}
        shown["properties"] = props
        return (
            "Reply with one action: a JSON object on one line matching this schema:\n"
            + json.dumps(shown, ensure_ascii=False)
        )

    def docs(self, name: str) -> list[Doc]:
        meta = self.metadata
        text = "\n\n".join(str(meta[k]) for k in ("description", "readme_content") if meta.get(k))
        if not text.strip():
            return []
        title = str(meta.get("name") or "environment")
        return [Doc(env=name, title=title, text=text, source=f"{self.url}/metadata")]


def _server_url(arg: str, opts: OpenEnvOptions) -> str:
    url = (arg or opts.url or "").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EnvError(
            "openenv needs the server's http(s) URL: --env openenv:http://HOST:PORT"
            + (f" (got {url!r})" if url else "")
        )
    return url


def _read(url: str) -> dict[str, Any]:
    """`/schema` and `/metadata`, or one line saying why the server cannot be used."""
    out: dict[str, Any] = {}
    for name in ("schema", "metadata"):
        try:
            with urllib.request.urlopen(f"{url}/{name}", timeout=TIMEOUT_S) as resp:
                out[name] = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            if name == "schema":
                raise EnvError(
                    f"openenv: {url}/schema answered {e.code}: is this an OpenEnv server?"
                ) from None
        except (OSError, ValueError) as e:
            raise EnvError(f"openenv: no OpenEnv server answers at {url}: {one_line(e)}") from None
    return out


@register_env("openenv")
def make_openenv_env(arg: str, config: Config) -> GymTextEnv:
    """`openenv:URL`: any OpenEnv server (its WebSocket sessions, its schema and metadata)."""
    opts = read_options(OpenEnvOptions, config, "openenv")
    url = _server_url(arg, opts)
    try:
        import websockets  # noqa: F401
    except ImportError:
        raise EnvError("openenv:URL needs websockets: pip install 'lbi[openenv]'") from None
    session = OpenEnvSession(url, http=_read(url))
    name = f"openenv:{url}"
    if not opts.action_description or opts.action_description == GymOptions().action_description:
        opts.action_description = session.action_description()
    docs_dir = opts.docs or opts.docs_dir
    docs = [] if docs_dir else session.docs(name)
    if not docs_dir and not docs:
        raise EnvError(
            f"{name} states no description: give its documentation with --docs FILE_OR_FOLDER"
        )
    return GymTextEnv(session, name=name, docs=docs, docs_dir=docs_dir, options=opts)
