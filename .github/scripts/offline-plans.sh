#!/usr/bin/env bash
# The offline plan of every stack of one checkout, for the pull-request comment (mlplatform/plan/compare.py):
#   offline-plans.sh TREE PYTHON OUT
# runs `PYTHON -m mlplatform plan` in TREE for each Pulumi.<stack>.yaml there and leaves in OUT, per stack:
#   <stack>.json         the plan document (when plan got as far as writing it)
#   <stack>.policy.json  the policy findings (where TREE's `plan` has --policy-out)
#   <stack>.log, .rc     what plan printed, and its exit status
#   <stack>.error        when that status is not 0: the log's tail, saying why
# TREE's own program and stack files are planned, so a stack the pull request adds or removes shows as such.
# Exit status: 0 when every stack's plan exited 0, else 1 (the workflow posts the comment first).
set -uo pipefail

tree=$(cd "$1" && pwd)
python=$2
mkdir -p "$3"
out=$(cd "$3" && pwd)
status=0
# a commit from before the policy pack has no --policy-out: its side of the comment has no policy results
with_policy=false
if grep -q -- "--policy-out" "$tree/mlplatform/cli.py" 2>/dev/null; then
  with_policy=true
fi
shopt -s nullglob
for file in "$tree"/Pulumi.*.yaml; do
  stack=${file##*/Pulumi.}
  stack=${stack%.yaml}
  # client files go beside the plans, not into the checkout
  args=(plan --stack "$stack" --summary --out "$out/$stack.json" --clients "$out/clients")
  if [ "$with_policy" = true ]; then
    args+=(--policy-out "$out/$stack.policy.json")
  fi
  (cd "$tree" && "$python" -m mlplatform "${args[@]}") >"$out/$stack.log" 2>&1
  rc=$?
  echo "$rc" >"$out/$stack.rc"
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$out/$stack.log" >"$out/$stack.error"
    status=1
  fi
  echo "plan $stack: exit $rc"
done
exit "$status"
