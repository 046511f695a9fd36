#!/usr/bin/env bash
# The paper's tables with a model that can act (issue 26, item 3), through `lbi experiment paper`.
#   docs/evidence/qwen-<size>-spider.md  spider-dev-23 (23 questions), 1 evaluation seed: none,
#                                        lbi data (`both`), gold data (each question's own gold
#                                        SQL held out); the same model writes the tasks, labels
#                                        the windows and judges them (self-improvement, as in
#                                        the paper)
# Usage: bash experiments/qwen_paper.sh [0.5b|1.5b] [ARMS]     (default: 0.5b none,both,gold)
# Every arm is a run under runs/, so a rerun resumes where it stopped. THREADS=1 (the default)
# leaves a core to other jobs; THREADS=2 only on an otherwise idle machine (models/local.py).
set -euo pipefail
cd "$(dirname "$0")/.."
LBI=${LBI:-.venv/bin/lbi}
size=${1:-0.5b}; arms=${2:-none,both,gold}
"$LBI" models pull "qwen2.5-coder-${size}"
"$LBI" experiment paper --env sql --suite spider-dev-23 --model "local:qwen2.5-coder-${size}" \
  --max-steps 4 --name "qwen-${size}-spider" --set synth.max_chunks=4 --set synth.max_steps=4 \
  --set door.concurrency=4 --set models.local.threads="${THREADS:-1}" \
  --seeds 1 --gold-seeds 1000 --arms "$arms" --page "qwen-${size}-spider"
