#!/usr/bin/env bash
# Runs the suite in stages, fastest first, so a broken basic test fails in seconds:
#   1. hermetic tests (fake engine, SQLite)        2. real embedded model tests
#   3. the store and API tests against PostgreSQL   (started on loopback by the fixtures)
#   4. the web app in Debian's Chromium (Playwright)
# pytest's exit code 5 means "no tests collected": for a stage with no tests yet that is not a
# failure, so it is mapped to 0; any other non-zero code fails the run. The last line sums up
# every stage ("N passed, N failed").
set -uo pipefail
PY=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
status=0 passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
stage() {
  local name=$1; shift
  echo "=== tests: $name ==="
  # The slowest tests of each stage are listed, to keep `make test` inside its 30 minutes.
  $PY -m pytest --durations=8 "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 5 ]; then echo "(no tests in stage $name)"; rc=0; fi
  [ "$rc" -ne 0 ] && status=$rc
  # pytest's closing line, e.g. "3 failed, 90 passed, 2 errors in 9.1s"
  count() { tail -n 1 "$log" | awk -v pat="$1" '{for (i = 1; i < NF; i++) if ($(i+1) ~ pat) s += $i} END {print s + 0}'; }
  passed=$((passed + $(count '^passed')))
  failed=$((failed + $(count '^(failed|errors?)')))
}
# The slow security tests (fuzzing, load, kill -9) run in `make security`.
stage hermetic -q -m "not model and not postgres and not browser and not security_slow"
stage model -q -m "model and not postgres and not browser and not security_slow"
stage postgres -q -m "postgres and not security_slow"
stage browser -q -m "browser and not postgres and not security_slow"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "all stages: $passed passed, $failed failed"
exit $status
