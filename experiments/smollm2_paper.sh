#!/usr/bin/env bash
# The paper's tables for the embedded SmolLM2-135M on this CPU, through `lbi experiment paper`.
#   docs/evidence/smollm2.md       MiniWoB quick (10 families) x 10 evaluation seeds: none, lbi data
#                                  (`both`), gold data (`both`), LoRA on lbi data, LoRA on gold data
#   docs/evidence/smollm2-swap.md  the gold stage swap (tasks, rollouts, labels, judge) at 5 seeds
#   docs/evidence/smollm2-toy.md   toy-5 x 4 sampled seeds: none, lbi data, gold data (each task's
#                                  own gold example held out: a toy seed does not change a task),
#                                  LoRA on lbi data
#   docs/evidence/smollm2-spider.md spider-dev-23 (23 questions), 1 evaluation seed: none, lbi data,
#                                  gold data (each question's own gold SQL held out), LoRA on lbi
#                                  data; a seed changes no question, so one seed of each says it all
# Every arm is a run under runs/, so a rerun resumes; the swap command reuses the first's
# episodes at seeds 0-4. Gold data comes from seeds 1000-1001, synthesis rollouts from 1002 on.
# THREADS=2 (the default here) uses both cores: only on an otherwise idle machine (llama.cpp's threads
# spin at a barrier, and a busy core makes 2 threads far slower than 1; models/local.py).
# LoRA: lr 2e-4 and batches of 8 chats (the defaults, 2e-5 and 128, are for large datasets:
# with a few dozen chats they would take 3 optimizer steps).
set -euo pipefail
cd "$(dirname "$0")/.."
LBI=${LBI:-.venv/bin/lbi}
common=(--env miniwob --suite miniwob-quick --model local --max-steps 3 --name smollm2-miniwob
  --set synth.max_chunks=8 --set synth.max_steps=4 --set door.concurrency=4
  --set models.local.threads="${THREADS:-2}" --set train.lr=2e-4 --set train.batch_size=8)
# In-context arms first (the page is written at once), then the LoRA arms, which rewrite it.
"$LBI" experiment paper "${common[@]}" --seeds 10 --arms none,both,gold --page smollm2
"$LBI" experiment paper "${common[@]}" --seeds 10 --arms none,both,gold,lora-lbi,lora-gold \
  --page smollm2
"$LBI" experiment paper "${common[@]}" --seeds 5 \
  --arms none,both,gold,swap-tasks,swap-rollouts,swap-labels,swap-judge --page smollm2-swap
"$LBI" experiment paper --env toy --suite toy-5 --model local --max-steps 6 --name smollm2-toy \
  --set models.local.threads="${THREADS:-2}" --set train.lr=2e-4 --set train.batch_size=8 \
  --seeds 4 --arms none,both,gold,lora-lbi --page smollm2-toy
"$LBI" experiment paper --env sql --suite spider-dev-23 --model local --max-steps 4 \
  --name smollm2-spider --set synth.max_chunks=8 --set synth.max_steps=4 --set door.concurrency=4 \
  --set models.local.threads="${THREADS:-2}" --set train.lr=2e-4 --set train.batch_size=8 \
  --seeds 1 --gold-seeds 1000 --arms none,both,gold,lora-lbi --page smollm2-spider
