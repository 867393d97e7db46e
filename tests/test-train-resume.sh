#!/bin/sh
# kill -9 during training, rerun: the run resumes from its last checkpoint (written atomically
# every 3 steps), loses at most one interval, and metrics.csv ends with each step once.
# SKIP (77) without torch, monai, transformers, safetensors.
set -u
. "$(dirname "$0")/train-common.sh"
train_setup 4 || train_finish 1
run="$tmp/run"
# shellcheck disable=SC2046
set -- $(train_args "$run") --steps 14 --batch 2 --ckpt-every 3 --log-every 1 --w-tma 0.5
"$PY" -m train.train "$@" 2> "$tmp/first.log" &
pid=$!
rows=0
for _ in $(seq 1 600); do
  rows=$( (tail -n +2 "$run/metrics.csv" 2>/dev/null || true) | wc -l)
  [ "$rows" -ge 7 ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.2
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
killed_at=$(tail -n +2 "$run/metrics.csv" | wc -l)
echo "killed with -9 after step $killed_at"
if [ "$killed_at" -ge 14 ] || [ "$killed_at" -lt 3 ]; then
  echo "FAIL: the kill did not land mid-run (step $killed_at of 14)"
  train_finish 1
fi
"$PY" -m train.train "$@" 2> "$run/resume.log" || { cat "$run/resume.log"; train_finish 1; }
grep resumed "$run/resume.log"
"$PY" -m train.checks resume "$run/metrics.csv" "$killed_at" 3
train_finish $?
