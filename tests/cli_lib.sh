# Helpers shared by the CLI test scripts: check NAME EXPECTED OUTPUT, run_fail NAME MESSAGE CMD...
fails=0
check() {  # check NAME EXPECTED_SUBSTRING OUTPUT
  if [[ "$3" != *"$2"* ]]; then
    echo "FAIL: $1: expected '$2' in:"; echo "$3" | head -20; fails=$((fails + 1))
  else
    echo "ok: $1"
  fi
}
run_fail() {  # run_fail NAME EXPECTED_MESSAGE CMD...: must exit non-zero with one error line
  local name=$1 msg=$2; shift 2
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  if [[ $rc -eq 0 ]]; then echo "FAIL: $name: exited 0"; fails=$((fails + 1)); return; fi
  check "$name" "$msg" "$out"
  if [[ $(echo "$out" | wc -l) -ne 1 ]]; then echo "FAIL: $name: error is not one line"; fails=$((fails + 1)); fi
}
