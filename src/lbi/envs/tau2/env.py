"""`tau2.DOMAIN`: the tau2 customer-service domains (airline, retail, telecom, mock).

The agent is the customer-service agent: tool calls are actions
(`{"name": "get_user_details", "arguments": {...}}`), `respond` sends a message to the
customer and observes their reply, `done` ends the conversation. The customer is simulated
by a model through the door (`env_options.tau2.user_model`, default `config.model`) from the
task's user scenario. In telecom (dual control) the customer also acts on their own phone:
they call the user-side tools on the user database through tau2's own environment, writing one
JSON tool call as their whole reply (tau2's guidelines: a turn is a message or a tool call, and
the agent never sees the calls). Each such call is recorded on the agent step it happened in,
`info["other_actions"]` -> `Step.other_actions` (actor "user"), and is part of the message
list tau2's evaluator replays. When the conversation ends (`done`, or the customer's stop token) the
package's own evaluator scores it, and the reward is on that final step.

Synchronous methods over an async door: each instance owns one event loop in one thread,
started on the first simulated-user turn and stopped by `close()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from lbi.aio import BackgroundLoop
from lbi.envs.base import ActionSpace, EnvError, StepResult, register_env
from lbi.envs.docs import split_markdown
from lbi.envs.tau2.domain import (
    GREETING,
    STOP_TOKENS,
    AssistantMessage,
    Domain,
    Message,
    Tau2Task,
    ToolCall,
    ToolMessage,
    UserMessage,
    get_domain,
    user_guidelines,
)
from lbi.envs.tools.actions import (
    DONE,
    RESPOND,
    ToolActionError,
    format_tool_action,
    parse_tool_action,
)
from lbi.envs.tools.schema import describe_tool, describe_tools, tool_action_space
from lbi.envs.tools.steps import open_step, tool_error
from lbi.models.base import ChatRequest, Model
from lbi.prompts import render
from lbi.types import Doc, Task

if TYPE_CHECKING:
    from lbi.config import Config
    from lbi.models.door import ModelDoor


class Tau2Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_model: str | None = None  # None: config.model
    user_temperature: float = 0.0
    user_max_tokens: int = 300
    policy_in_prompt: bool = True  # tau2's own agent gets the policy in its system prompt


MAX_USER_CALLS = 10  # phone calls the customer may make in one agent step before they must talk


class Tau2Env:
    max_concurrency = 8
    reset_calls_model = True  # the simulated customer speaks first: no pre-flight reset

    def __init__(self, domain: str, config: Config, user_model: Model | None = None) -> None:
        try:
            self.options = Tau2Options.model_validate(config.env_options.get("tau2", {}))
        except ValidationError as e:
            first = e.errors()[0]
            raise EnvError(
                f"bad env_options.tau2.{'.'.join(map(str, first['loc']))}: {first['msg']}"
            ) from None
        self.domain: Domain = get_domain(domain)
        self.name = f"tau2.{domain}"
        self.config = config
        self._user_model = user_model
        self._loop: BackgroundLoop | None = None
        self._door: ModelDoor | None = None
        self._env = self.domain.fresh_env()
        self._dirty = False  # did a state-changing tool run since the last fresh copy?
        self._digest: str | None = None
        self._task: Tau2Task | None = None
        self._scenario = ""
        self._messages: list[Message] = []
        self._seed: int | None = None
        self._over = False
        self._user_actions: list[dict[str, Any]] = []  # the customer's, since the last step

    # -- docs and action space -----------------------------------------------------------
    def docs(self) -> list[Doc]:
        src = f"tau2:{self.domain.name}"
        docs = [
            Doc(env=self.name, source=f"{src}/policy.md", title=title or "Policy", text=body)
            for title, body in split_markdown(self.domain.policy)
        ]
        for schema in self.domain.schemas()[:-2]:
            name = schema["function"]["name"]
            kind = "changes the database" if self.domain.is_write(name) else "reads only"
            text = f"Tool {describe_tool(schema)}\n  ({kind})"
            docs.append(
                Doc(env=self.name, source=f"{src}/tools#{name}", title=f"Tool {name}", text=text)
            )
        for schema in self.domain.user_schemas():
            name = schema["function"]["name"]
            text = (
                f"The customer can run this on their own phone (ask them to; you cannot):\n"
                f"{describe_tool(schema)}"
            )
            docs.append(
                Doc(
                    env=self.name,
                    source=f"{src}/user_tools#{name}",
                    title=f"Customer's phone: {name}",
                    text=text,
                )
            )
        return docs

    def action_space(self) -> ActionSpace:
        preface = (
            f"You are a customer service agent in the tau2 {self.domain.name} domain. Call tools to "
            'look things up and make changes; talk to the customer with {"name": "respond", '
            '"arguments": {"content": "..."}} (the observation is their reply); end with '
            '{"name": "done", "arguments": {}}. Follow the policy.'
        )
        if self.options.policy_in_prompt:
            preface += f"\n\n<policy>\n{self.domain.policy.strip()}\n</policy>\n"
        examples = [
            format_tool_action(RESPOND, {"content": "Could you give me your user id?"}),
            format_tool_action(DONE),
        ]
        return tool_action_space(self.domain.schemas(), preface, examples)

    # -- episodes -------------------------------------------------------------------------
    def reset(self, task: Task, seed: int | None = None) -> tuple[str, dict[str, Any]]:
        tid = task.setup.get("tau2_task_id")
        if tid is not None and str(tid) not in self.domain.tasks:
            raise EnvError(f"no task {tid!r} in tau2 domain {self.domain.name}")
        self._task = self.domain.tasks[str(tid)] if tid is not None else None
        if self._dirty:
            self._env, self._dirty = self.domain.fresh_env(), False
        self._digest, self._seed, self._over = None, seed, False
        self._user_actions = []
        history: list[Message] = []
        init = self._task.initial_state if self._task else None
        if init is not None:
            history = list(init.message_history or [])
            self._env.set_state(init.initialization_data, init.initialization_actions, history)
            self._dirty = True
        if self._task is not None:
            self._scenario = str(self._task.user_scenario)
        else:  # a synthesized task: the customer wants what the instruction says
            self._scenario = f"Instructions:\n\tYou are a customer. Your goal: {task.instruction}"
        self._messages = history or [AssistantMessage(role="assistant", content=GREETING)]
        last = self._messages[-1]
        if isinstance(last, UserMessage) and last.content:  # a history that ends on the customer
            first = last.content
        else:
            first = self._user_turn()
        return f"User: {first}", {"task_id": task.id}

    def step(self, action: str) -> StepResult:
        obs, reward, terminated, truncated, info = self._step(action)
        if self._user_actions:  # what the customer did on their phone during this step
            info = {**info, "other_actions": self._user_actions}
            self._user_actions = []
        return obs, reward, terminated, truncated, info

    def _step(self, action: str) -> StepResult:
        call = open_step(action, self._over, "conversation")
        if isinstance(call, tuple):
            return call
        if call.name == DONE:
            return self._finish("The conversation is over.")
        if call.name == RESPOND:
            return self._respond(call.arguments.get("content"))
        return self._tool(call.name, call.arguments)

    def _respond(self, content: Any) -> StepResult:
        if not isinstance(content, str) or not content.strip():
            return tool_error('Error: respond needs {"content": "<message to the customer>"}.')
        self._messages.append(AssistantMessage(role="assistant", content=content))
        reply = self._user_turn()
        if any(tok in reply for tok in STOP_TOKENS):
            return self._finish(f"User: {reply}\nThe customer ended the conversation.")
        return f"User: {reply}", 0.0, False, False, {}

    def _tool(self, name: str, args: dict[str, Any]) -> StepResult:
        tool = self.domain.tools.get(name)
        if tool is None:
            known = ", ".join([*sorted(self.domain.tools), RESPOND, DONE])
            return tool_error(f"Error: unknown tool {name!r}. Available: {known}.")
        try:
            tool.params.model_validate(args)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(map(str, first["loc"])) or "arguments"
            return tool_error(f"Error: bad arguments for {name}: {where}: {first['msg']}.")
        call = ToolCall(
            id=f"call_{len(self._messages)}", name=name, arguments=args, requestor="assistant"
        )
        self._dirty = self._dirty or self.domain.may_change_state(name)
        self._digest = None
        try:
            result = self._env.get_response(call)  # tool exceptions come back as "Error: ..."
        except Exception as e:  # e.g. a result the package cannot serialise
            return tool_error(f"Error: {name} failed: {type(e).__name__}: {e}")
        self._messages += [AssistantMessage(role="assistant", tool_calls=[call]), result]
        return str(result.content), 0.0, False, False, {"error": bool(result.error)}

    def _finish(self, obs: str) -> StepResult:
        self._over = True
        if self._task is None:
            return obs, 0.0, True, False, {"note": "no evaluation criteria (not a benchmark task)"}
        score = self.domain.evaluate(self._task, self._messages)
        return (
            obs,
            score.reward,
            True,
            False,
            {"success": score.reward >= 1.0, "reward_info": score.info},
        )

    # -- the simulated customer -------------------------------------------------------------
    def _user_messages(self) -> list[dict[str, Any]]:
        """The conversation from the customer's side: agent text is `user`, theirs `assistant`."""
        tools = self.domain.user_schemas()
        system = render(
            "tau2_user",
            guidelines=user_guidelines(bool(tools)),
            scenario=self._scenario,
            tools=describe_tools(tools) if tools else "",
        )
        out: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for m in self._messages:
            if isinstance(m, UserMessage) and m.tool_calls:  # the customer's own phone actions
                for tc in m.tool_calls:
                    out.append(
                        {"role": "assistant", "content": format_tool_action(tc.name, tc.arguments)}
                    )
            elif isinstance(m, ToolMessage) and m.requestor == "user":
                out.append({"role": "user", "content": f"(your phone) {m.content}"})
            elif (
                m.role in ("assistant", "user") and not getattr(m, "tool_calls", None) and m.content
            ):
                out.append(
                    {"role": "user" if m.role == "assistant" else "assistant", "content": m.content}
                )
        return out

    def _user_turn(self) -> str:
        request = ChatRequest(
            messages=self._user_messages(),
            temperature=self.options.user_temperature,
            max_tokens=self.options.user_max_tokens,
            seed=self._seed,
            kind="user_sim",
            meta={
                "env": self.name,
                "task": self._task.id if self._task else None,
                "scenario": self._scenario,
            },
        )
        loop, door = self._user_door()
        reply = loop.run(door.chat(request, stage="user_sim")).text.strip() or "(no reply)"
        call = self._phone_call(reply)
        if call is not None:  # an action on their phone; they see its result and go on
            self._user_tool(call)
            return self._user_turn()
        self._messages.append(UserMessage(role="user", content=reply))
        return reply

    def _phone_call(self, reply: str) -> ToolCall | None:
        """A reply that is one JSON tool call, where the customer has tools, is a phone action."""
        if not self.domain.user_tools or not reply.lstrip("`").lstrip().startswith(("{", "json")):
            return None
        if len(self._user_actions) >= MAX_USER_CALLS:  # enough for one step: now they talk
            return None
        call = parse_tool_action(reply)
        if isinstance(call, ToolActionError):
            return None
        return ToolCall(
            id=f"user_call_{len(self._messages)}",
            name=call.name,
            arguments=call.arguments,
            requestor="user",
        )

    def _user_tool(self, call: ToolCall) -> None:
        """Run the customer's call on their phone through tau2's environment (it syncs both
        databases), keep it in the conversation tau2 evaluates, and record it for the step."""
        self._dirty, self._digest = True, None
        try:
            result = self._env.get_response(call)  # errors come back as "Error: ..." content
        except Exception as e:  # e.g. a result the package cannot serialise
            content = f"Error: {call.name} failed: {type(e).__name__}: {e}"
            result = ToolMessage(
                id=call.id, content=content, requestor="user", role="tool", error=True
            )
        self._messages += [UserMessage(role="user", tool_calls=[call]), result]
        self._user_actions.append(
            {
                "actor": "user",
                "action": format_tool_action(call.name, call.arguments),
                "result": str(result.content)[:2000],
                "error": bool(result.error),
            }
        )

    def _user_door(self) -> tuple[BackgroundLoop, ModelDoor]:
        if self._loop is None:
            self._loop = BackgroundLoop(f"lbi-{self.name}-user")
        if self._door is None:
            self._door = self._loop.run(self._open_door())
        return self._loop, self._door

    async def _open_door(self) -> ModelDoor:
        # Built on the env's own loop: the door's cache connection and semaphore live there.
        from lbi.models.accounting import run_accountant
        from lbi.models.door import ModelDoor, open_door

        if self._user_model is not None:
            return ModelDoor(self._user_model, self.config, None, run_accountant(self.config))
        return open_door(self.options.user_model or self.config.model, self.config)

    # -- state, close, suites ---------------------------------------------------------------
    def state_digest(self) -> str:
        if self._digest is None:  # the package's DB hash: 0.2-0.7 s, so cached until a change
            self._digest = f"{self._env.get_db_hash()}:{self._env.get_user_db_hash()}"
        return self._digest

    def close(self) -> None:
        if self._loop is not None:
            if self._door is not None:
                self._loop.run(self._door.aclose(), timeout=30)
            self._loop.close()
        self._loop = self._door = None

    def suites(self) -> list[str]:
        return self.domain.suites()

    def load_suite(self, name: str) -> list[Task]:
        return self.domain.load_suite(name)

    def sample_tasks(self) -> list[Task]:
        return self.domain.load_suite(f"tau2-{self.domain.name}-quick")[:2]


@register_env(
    "tau2",
    "tau2 customer-service domains with a simulated customer: tau2.airline, tau2.retail, tau2.mock",
)
def _factory(arg: str, config: Config) -> Tau2Env:
    if not arg:
        raise EnvError("name a tau2 domain, e.g. tau2.retail (known: airline, retail, mock)")
    return Tau2Env(arg, config)
