#!/usr/bin/env bash
# Runs the suite in stages, fastest first, so a broken basic test fails in seconds:
#   1. hermetic tests (fake engine, SQLite)        2. real embedded model tests
#   3. the store and API tests against PostgreSQL   (started on loopback by the fixtures)
# pytest's exit code 5 means "no tests collected": for a stage with no tests yet that is not a
# failure, so it is mapped to 0; any other non-zero code fails the run.
set -uo pipefail
PY=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
status=0
stage() {
  local name=$1; shift
  echo "=== tests: $name ==="
  $PY -m pytest "$@"
  local rc=$?
  if [ $rc -eq 5 ]; then echo "(no tests in stage $name)"; rc=0; fi
  [ $rc -ne 0 ] && status=$rc
}
stage hermetic -q -m "not model and not postgres and not browser"
stage model -q -m "model and not postgres and not browser"
stage postgres -q -m "postgres"
stage browser -q -m "browser and not postgres"
exit $status
