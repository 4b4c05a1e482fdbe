#!/usr/bin/env bash
# Turns what up.sh left into the job's report: the check table (Markdown)
# appended to $GITHUB_STEP_SUMMARY under a heading with the result and the
# accelerator, and the outputs result, checks, accel, junit, sandbox, vmnet
# appended to $GITHUB_OUTPUT. Exits 1 when the lab did not pass, so the job
# fails after its report is written.
set -euo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"
: "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set: run inside GitHub Actions, or point it at a file}"
: "${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set: run inside GitHub Actions, or point it at a file}"

json=$VMNET_WORK/up.json
rc=$(cat "$VMNET_WORK/up.rc" 2>/dev/null || echo "no run")
field() { jq -r "$1 // empty" "$json" 2>/dev/null || true; }
name=$(field .lab)
total=$(field .check.total)
failed=$(field .check.failed)
type=$(field .accel.type)
reason=$(field .accel.reason)
if [ -z "$type" ]; then # lab up stopped before its JSON: its log says which
  line=$(grep -m1 '^accelerator: ' "$VMNET_WORK/up.log" 2>/dev/null || true)
  type=$(sed -n 's/^accelerator: \([a-z]*\) (.*/\1/p' <<<"$line")
  reason=$(sed -n 's/^accelerator: [a-z]* (\(.*\))$/\1/p' <<<"$line")
fi
case "$type" in
  kvm) accel=kvm ;;
  qemu) accel=tcg ;;
  *) accel=unknown ;;
esac
result=fail
if [ "$rc" = 0 ] && [ "${total:-0}" -gt 0 ] && [ "${failed:-1}" -eq 0 ]; then result=pass; fi
junit=$VMNET_JUNIT
[ -s "$junit" ] || junit=
[ -n "$name" ] && echo "$name" >"$VMNET_WORK/lab-name"

{
  echo "result=$result"
  echo "checks=${total:-0}"
  echo "accel=$accel"
  echo "junit=$junit"
  echo "sandbox=$VMNET_SANDBOX"
  echo "vmnet=$VMNET_BIN"
} >>"$GITHUB_OUTPUT"

{
  echo "## vmnet lab ${name:-$VMNET_LAB}: $result"
  echo
  # The reason is vmnet's own sentence; a code span keeps it literal. The
  # check table names the accelerator itself: above it, only the reason.
  reason=${reason//\`/\'}
  if [ -s "$VMNET_WORK/checks.md" ]; then
    [ -z "$reason" ] || printf 'Accelerator probe: \x60%s\x60\n\n' "$reason"
    cat "$VMNET_WORK/checks.md"
  else
    if [ -n "$reason" ]; then
      echo "Accelerator: **$accel** (\`$reason\`)"
    else
      echo "Accelerator: **$accel**"
    fi
    echo
    echo "lab up stopped before its checks ran (exit $rc). The end of its log:"
    echo
    echo '```text'
    tail -n 40 "$VMNET_WORK/up.log" 2>/dev/null || echo "(no log: lab up did not start)"
    echo '```'
  fi
} >>"$GITHUB_STEP_SUMMARY"

say "result=$result checks=${total:-0} accel=$accel junit=${junit:-none}"
if [ "$result" != pass ]; then
  echo "::error title=vmnet lab ${name:-$VMNET_LAB}::${failed:-?} of ${total:-?} checks failed, or lab up stopped (exit $rc): see the job summary"
  exit 1
fi
