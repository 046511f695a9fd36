#!/usr/bin/env bash
# `make demo`: the whole learn-by-interact loop on the embedded defaults (SmolLM2 + MiniLM, SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-demo}"
CONFIG="configs/${PROFILE}.yaml"
RUN="${RUN:-demo-${PROFILE}}"
LBI=".venv/bin/lbi"
# MODEL=SPEC runs the demo with another model, RUN_ROOT=DIR in another runs folder (with its
# own call cache); experiments/demo_models.py measures each model that way.
ROOT_OPT=()
if [ -n "${RUN_ROOT:-}" ]; then ROOT_OPT=(--set "run_root=${RUN_ROOT}"); fi
MODEL_OPT=("${ROOT_OPT[@]}")
if [ -n "${MODEL:-}" ]; then MODEL_OPT+=(--model "$MODEL"); fi
echo "== lbi demo — profile ${CONFIG} (run '${RUN}'); the full-size run: make demo PROFILE=full"
echo "== 1. check the environment against the contract"
$LBI envs check sql
echo "== 2. one episode of the local model on a Spider question, every action and observation"
$LBI episode --config "$CONFIG" "${MODEL_OPT[@]}" --suite spider-dev-23 --task 0 --max-steps 3
echo "== 3. synthesize: docs -> tasks -> rollouts -> backward construction -> judges"
$LBI synth --config "$CONFIG" "${MODEL_OPT[@]}" --run "$RUN"
echo "== 4. index the dataset"
$LBI index build "$RUN" --config "$CONFIG" "${ROOT_OPT[@]}"
echo "== 5. evaluate: no retrieval vs agentic retrieval (observation + model-based)"
$LBI eval --config "$CONFIG" "${MODEL_OPT[@]}" --run "$RUN" --suite spider-dev-23 --variants none,both
echo "== 6. the report"
$LBI report "$RUN" --config "$CONFIG" "${ROOT_OPT[@]}"
echo "== done. Next:"
echo "   .venv/bin/lbi view ${RUN}                      # browse the dataset, trajectories and report"
echo "   .venv/bin/lbi export ${RUN} --format openai --out train.jsonl   # the dataset for fine-tuning"
echo "   .venv/bin/lbi synth --env sql:pets_1 --model local --limit 3 --run mine   # your own run (README: Quick start)"
