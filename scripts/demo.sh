#!/usr/bin/env bash
# Starts the demo: migrate, users, sample dataset, web server + worker, and a live run.
# Ctrl-C stops both processes.
set -euo pipefail
BIN=${BIN:-.venv/bin}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
PY="$BIN/python"

"$PY" manage.py migrate --noinput
echo
echo "Demo accounts (passwords are new on every start):"
"$PY" manage.py create_demo_users
if "$PY" manage.py help demo_setup >/dev/null 2>&1; then
  "$PY" manage.py demo_setup
fi

pids=()
alive() {
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}
wait_a_little() {
  for _ in $(seq 1 "$1"); do alive || return 0; sleep 0.5; done
}
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "Stopping web server and workers..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # TERM lets the worker finish its task: fine for a short job, but a run would go on to its
  # last step. After a few seconds the worker stops cold (SIGQUIT: its task's process ends,
  # the run keeps its last checkpoint and resumes on the next start).
  wait_a_little 10
  for pid in "${pids[@]}"; do kill -QUIT "$pid" 2>/dev/null || true; done
  wait_a_little 30
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# The GPU worker: one task at a time, each in a fresh child process: a cold stop ends the
# child and leaves the worker's own state clean. -B: it also runs beat (the sweep sends again
# any job whose worker or message was lost); a deployment runs one beat of its own.
"$BIN/celery" -A workers worker -Q gpu --pool=prefork --concurrency=1 \
  --max-tasks-per-child=1 --loglevel=INFO -B --without-gossip --without-mingle \
  --hostname "demo-gpu@%h" &
pids+=($!)
# A second worker for the judge and default queues (grading, judging, selection, tier
# ordering, evaluation judging, the sweep itself), so they never wait behind a training run.
"$BIN/celery" -A workers worker -Q judge,default --pool=prefork --concurrency=2 \
  --loglevel=INFO --without-gossip --without-mingle --hostname "demo-judge@%h" &
pids+=($!)
"$PY" manage.py runserver --noreload "$HOST:$PORT" &
pids+=($!)

# Wait for the web server before printing the URL.
for _ in $(seq 1 60); do
  if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://$HOST:$PORT/login/', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.5
done
if "$PY" manage.py help demo_launch >/dev/null 2>&1; then
  "$PY" manage.py demo_launch
fi
echo
echo "Writing-RL Studio is running at http://$HOST:$PORT/  (Ctrl-C stops web and workers)"
wait -n "${pids[@]}"
