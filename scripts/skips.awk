# Lists the tests that a `go test -v` log skipped, each with its package and
# the reason it logged (t.Skip's message: the test's last log entry, with its
# continuation lines), one per line: "PACKAGE TEST: FILE:LINE: REASON".
# A skip without a reason is listed as "NO REASON GIVEN". Used by test.sh:
#   awk -f scripts/skips.awk go-test.log
# In a -v log a test's output follows its "=== RUN|CONT|NAME  Test" header
# and comes before its "--- SKIP: Test" line; a package's tests end with its
# "ok", "FAIL" or "?" line.
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
/^=== (RUN|CONT|NAME) / { cur = $3; cont = 0; next }
/^=== / { cur = ""; cont = 0; next }
/^ *--- (PASS|FAIL|SKIP): / {
	if ($2 == "SKIP:") { n++; name[n] = $3; why[n] = ($3 in last) ? last[$3] : "NO REASON GIVEN"; pkg[n] = "" }
	cont = 0
	next
}
/^(ok|FAIL|\?)[ \t]+[^ \t]/ && NF >= 2 {
	for (i = 1; i <= n; i++) if (pkg[i] == "") pkg[i] = $2
	split("", last)
	cur = ""; cont = 0
	next
}
# A log entry: 4 spaces per subtest level (chatty mode prints every level
# at 4), then FILE.go:LINE: and the message.
cur != "" && /^    +[^ ]+\.go:[0-9]+: / { last[cur] = trim($0); cont = 1; next }
# Its continuation lines are indented further.
cur != "" && cont && /^        / { last[cur] = last[cur] " / " trim($0); next }
{ cont = 0 }
END {
	for (i = 1; i <= n; i++) printf "%s %s: %s\n", (pkg[i] == "" ? "?" : pkg[i]), name[i], why[i]
}
