#!/usr/bin/env bash
# One entry point for every Writing-RL Studio container (and for the tests, which run the
# same commands without Docker):
#
#   entrypoint.sh web                 migrate, collect static files, serve with gunicorn
#   entrypoint.sh worker QUEUE        a Celery worker: default | judge | gpu
#   entrypoint.sh beat                Celery beat (periodic tasks; run exactly one)
#   entrypoint.sh beat-healthcheck    exit 0 when beat saved its schedule in the last 10 minutes
#   entrypoint.sh migrate             apply migrations and exit
#   entrypoint.sh healthcheck URL     exit 0 when URL answers 200 (for container health checks)
#   entrypoint.sh <anything else>     run it as given (e.g. python manage.py shell)
#
# Settings come from the environment (see README); PYTHON picks the interpreter.
set -euo pipefail

PYTHON=${PYTHON:-python}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-webapp.settings_production}
cd "$(dirname "$0")/.."

wait_for_database() {
  # The database container may still be starting; try for up to a minute.
  for _ in $(seq 1 60); do
    if "$PYTHON" -c "import django; django.setup(); from django.db import connection; connection.ensure_connection()" 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  echo "entrypoint: the database did not answer within 60 s" >&2
  return 1
}

command=${1:-web}
case "$command" in
  web)
    wait_for_database
    if [ "${MIGRATE_ON_START:-1}" = "1" ]; then
      "$PYTHON" manage.py migrate --noinput
    fi
    "$PYTHON" manage.py collectstatic --noinput --verbosity 0
    exec "$PYTHON" -m gunicorn webapp.wsgi:application \
      --bind "${BIND:-0.0.0.0:8000}" \
      --workers "${WEB_WORKERS:-3}" \
      --threads "${WEB_THREADS:-4}" \
      --timeout "${WEB_TIMEOUT:-60}" \
      --access-logfile - \
      --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-*}"
    ;;
  worker)
    queue=${2:?usage: entrypoint.sh worker default|judge|gpu}
    wait_for_database
    common=(-A workers worker --loglevel "${LOG_LEVEL:-INFO}" --without-gossip
            --hostname "${queue}-${WORKER_NAME:-${HOSTNAME:-local}}@%h")
    case "$queue" in
      default)
        exec "$PYTHON" -m celery "${common[@]}" -Q default --concurrency "${WORKER_CONCURRENCY:-4}"
        ;;
      judge)
        # Judge calls wait on the network: many threads, one process.
        exec "$PYTHON" -m celery "${common[@]}" -Q judge --pool threads \
          --concurrency "${WORKER_CONCURRENCY:-64}"
        ;;
      gpu)
        # One task at a time per GPU, never a second one reserved behind it, and a fresh child
        # per task (all GPU memory back between runs). prefork, not solo: the parent keeps
        # answering pings (health checks) while the child trains.
        exec "$PYTHON" -m celery "${common[@]}" -Q gpu --pool prefork --concurrency 1 \
          --prefetch-multiplier 1 --max-tasks-per-child 1
        ;;
      *)
        echo "entrypoint: unknown queue '$queue' (default, judge or gpu)" >&2
        exit 64
        ;;
    esac
    ;;
  beat)
    # Periodic tasks: the sweep that sends the task of a run whose worker was lost to a live
    # worker. The schedule file only remembers when each task last ran.
    wait_for_database
    exec "$PYTHON" -m celery -A workers beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule "${BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"
    ;;
  beat-healthcheck)
    # Beat saves its schedule file when it starts and every few minutes after.
    exec "$PYTHON" -c "import glob, os, sys, time; ages = [time.time() - os.path.getmtime(p) for p in glob.glob(glob.escape(sys.argv[1]) + '*')]; sys.exit(0 if ages and min(ages) < 600 else 1)" \
      "${BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"
    ;;
  migrate)
    wait_for_database
    exec "$PYTHON" manage.py migrate --noinput
    ;;
  healthcheck)
    url=${2:-http://127.0.0.1:8000/healthz?checks=database,broker}
    exec "$PYTHON" -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=5).status == 200 else 1)" "$url"
    ;;
  *)
    exec "$@"
    ;;
esac
