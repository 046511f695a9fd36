#!/usr/bin/env bash
# Ctrl-C during a local model call, N times in a row, with two busy loops beside it (issue 26):
# tests/test_interrupt_local.py (eval and synth) must pass every time: exit 130 with the resume
# line, never a crash. Usage: bash experiments/ctrl_c_stress.sh [N] [MODEL]
#   bash experiments/ctrl_c_stress.sh 50 local
#   bash experiments/ctrl_c_stress.sh 50 local:qwen2.5-coder-0.5b
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}; model=${2:-local}
busy() { while :; do :; done; }
busy & b1=$!; busy & b2=$!
trap 'kill $b1 $b2 2>/dev/null' EXIT
pass=0
for i in $(seq 1 "$n"); do
  if LBI_INTERRUPT_MODEL="$model" .venv/bin/python -m pytest -q -p no:randomly \
      tests/test_interrupt_local.py > "/tmp/ctrl_c_stress.$i.log" 2>&1; then
    pass=$((pass + 1)); rm -f "/tmp/ctrl_c_stress.$i.log"
  else
    echo "run $i failed: /tmp/ctrl_c_stress.$i.log"
  fi
done
echo "$model: $pass/$n passed with two busy loops beside it"
[ "$pass" -eq "$n" ]
