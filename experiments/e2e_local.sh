#!/usr/bin/env bash
# End-to-end with the embedded model on the non-SQL environments, at a size a 2-core CPU finishes
# in minutes (SmolLM2: ~4 s per call here). Each run writes runs/<run>/report/report.{md,html}.
# Usage: bash experiments/e2e_local.sh [miniwob|mcp|tau2]...   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
LBI=.venv/bin/lbi
SMALL=(--set synth.max_chunks=6 --set synth.max_tasks=6 --set synth.max_steps=3
       --set synth.max_window=3 --set eval.max_steps=3)
run() {  # env suite run-name variants
  $LBI synth --env "$1" --model local --run "$3" "${SMALL[@]}"
  $LBI eval --env "$1" --model local --run "$3" --suite "$2" --variants "$4" "${SMALL[@]}"
}
for what in "${@:-miniwob mcp tau2}"; do
  for w in $what; do
    case "$w" in
      miniwob) run miniwob miniwob-quick e2e-miniwob none,both ;;
      mcp) run mcp mcp-library-quick e2e-mcp none,both ;;
      tau2) run tau2.retail tau2-retail-quick e2e-tau2-retail none ;;
      *) echo "unknown: $w (miniwob, mcp, tau2)" >&2; exit 2 ;;
    esac
  done
done
