#!/usr/bin/env bash
# The whole suite, as `make test` runs it, in four parts side by side: the linters (ruff,
# mypy); the delivery-fault tests in one pytest process and the other end-to-end tests in
# another (each in order, ending with the personal-data scan of what it produced); the unit
# and integration tests spread over two pytest-xdist workers, a file at a time. Each pytest
# process runs on a RabbitMQ virtual host and databases of its own. Then, alone, the one
# test that stops and starts the shared RabbitMQ, with the personal-data scan of its run.
# Arguments go to each pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=.venv/bin/pytest
# The hypothesis properties at half their example counts (tests/hypothesis_budget.py).
export CASEBRIDGE_TEST_HYPOTHESIS=ci
e2e_log=$(mktemp -t casebridge-e2e.XXXXXX)
faults_log=$(mktemp -t casebridge-faults.XXXXXX)
lint_log=$(mktemp -t casebridge-lint.XXXXXX)
e2e="" faults="" lint=""
trap 'kill $e2e $faults $lint 2>/dev/null; rm -f "$e2e_log" "$faults_log" "$lint_log"' EXIT

{ .venv/bin/ruff check . && .venv/bin/mypy; } > "$lint_log" 2>&1 &
lint=$!

echo "tests/e2e runs beside the rest; its output follows theirs"
$PYTEST tests/e2e -m "not broker_restart" --ignore tests/e2e/test_delivery_faults.py "$@" \
  > "$e2e_log" 2>&1 &
e2e=$!
$PYTEST tests/e2e/test_delivery_faults.py tests/e2e/test_zz_no_personal_data.py \
  -m "not broker_restart" "$@" > "$faults_log" 2>&1 &
faults=$!
$PYTEST -n 2 --dist loadfile tests/unit tests/integration "$@"
rest=$?
wait "$e2e"
ends=$?
wait "$faults"
faulted=$?
wait "$lint"
linted=$?
echo "------------------------------- ruff and mypy -------------------------------"
cat "$lint_log"
echo "---------------------------------- tests/e2e ----------------------------------"
cat "$e2e_log"
echo "-------------------------- tests/e2e: delivery faults --------------------------"
cat "$faults_log"
echo "------------------------- tests/e2e: the broker restart -------------------------"
$PYTEST "$@" \
  tests/e2e/test_delivery_faults.py::test_a_broker_restart_during_delivery_loses_nothing \
  tests/e2e/test_zz_no_personal_data.py
restart=$?
echo "lint: exit $linted; unit + integration: exit $rest; e2e: exit $ends;" \
  "delivery faults: exit $faulted; broker restart: exit $restart"
[ "$linted" = 0 ] && [ "$rest" = 0 ] && [ "$ends" = 0 ] && [ "$faulted" = 0 ] \
  && [ "$restart" = 0 ]
