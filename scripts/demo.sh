#!/usr/bin/env bash
# `make demo`: the whole learn-by-interact loop on the embedded defaults (SmolLM2 + MiniLM, SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-demo}"
CONFIG="configs/${PROFILE}.yaml"
RUN="${RUN:-demo-${PROFILE}}"
LBI=".venv/bin/lbi"
echo "== lbi demo — profile ${CONFIG} (run '${RUN}'); the full-size run: make demo PROFILE=full"
echo "== 1. check the environment against the contract"
$LBI envs check sql
echo "== 2. one episode of the local model on a Spider question, every action and observation"
$LBI episode --config "$CONFIG" --suite spider-dev-23 --task 0 --max-steps 3
echo "== 3. synthesize: docs -> tasks -> rollouts -> backward construction -> judges"
$LBI synth --config "$CONFIG" --run "$RUN"
echo "== 4. index the dataset"
$LBI index build "$RUN" --config "$CONFIG"
echo "== 5. evaluate: no retrieval vs agentic retrieval (observation + model-based)"
$LBI eval --config "$CONFIG" --run "$RUN" --suite spider-dev-23 --variants none,both
echo "== 6. the report"
$LBI report "$RUN" --config "$CONFIG"
echo "== done. Next:"
echo "   .venv/bin/lbi view ${RUN}                      # browse the dataset, trajectories and report"
echo "   .venv/bin/lbi export ${RUN} --format openai --out train.jsonl   # the dataset for fine-tuning"
echo "   .venv/bin/lbi synth --env sql:pets_1 --model local --limit 3 --run mine   # your own run (README: Quick start)"
