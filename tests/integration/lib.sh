# SPDX-License-Identifier: MIT
# lib.sh: helpers shared by the integration test scripts (sourced).
# Every wait is bounded; `check` counts failures in $fails.
fails=0

# check DESCRIPTION COMMAND...: the command must succeed
check() {
	d=$1
	shift
	if "$@"; then echo "ok   $d"; else echo "FAIL $d"; fails=$((fails + 1)); fi
}

# wait_for FILE PATTERN SECONDS: until FILE contains PATTERN
wait_for() {
	i=0
	while [ $i -lt $(($3 * 10)) ]; do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "timed out waiting for '$2' in $1"
	return 1
}

# wait_pid PID SECONDS: until the background process PID has ended
wait_pid() {
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	! kill -0 "$1" 2>/dev/null
}

# free_ports BASE SPAN: the first P >= BASE (in steps of SPAN) such that
# no TCP port in [P, P + SPAN) is listening. Each test script takes its
# own BASE, so tests that ctest runs side by side never share a port
# (deriving ports from $$ did: two scripts started close together got
# overlapping ranges), and a port some other program holds is skipped.
free_ports() {
	p=$1
	while [ "$p" -lt 60000 ]; do
		if ! ss -Htln 2>/dev/null | awk -v lo="$p" -v hi="$(($p + $2))" '
		    { n = split($4, a, ":"); q = a[n] + 0 }
		    q >= lo && q < hi { found = 1 }
		    END { exit !found }'; then
			echo "$p"
			return 0
		fi
		p=$(($p + $2))
	done
	echo "$1"
}
