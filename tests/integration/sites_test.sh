#!/bin/sh
# SPDX-License-Identifier: MIT
# sites_test.sh FEDMESH SRC: a federation of sites that each bring their
# own data (scripts/sites_csv.lua), as real processes:
#   1. three client hosts, each with its own label-skewed CSV files that
#      no other node can read (as root: every node runs under its own uid
#      and each site's files are mode 0600, owned by it; the server holds
#      no data and can read none) learn one model that classifies every
#      label, on a test set no node held;
#   2. the same script simulated with the three datasets as a list gives
#      the same per-round metrics (federated evaluation included);
#   3. a site restarted mid-run says hello with its counts again and
#      trains again.
FM=$1
SRC=$2
. "$SRC/tests/integration/lib.sh"
S=$SRC/scripts/sites_csv.lua
T=$(mktemp -d)
PORT=$(free_ports 23000 20)
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	[ -n "$KEEP" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM
cols() { sed 's/"bytes_sent":[^,]*,"bytes_received":[^,]*,"seconds":[^,]*,//' "$1"; }
cd "$T" || exit 1
chmod 755 "$T"

"$FM" run "$SRC/scripts/make_sites.lua" dir=data >make.log 2>&1
check "the sites' files are made" test -s data/c3_test.csv
"$FM" keygen --dir keys server c1 c2 c3 >keygen.log 2>&1
mkdir out
ARGS="rounds=10 port=$PORT keys=keys dir=data save=out/model.fm"

# Each node its own uid when we can (root): uid 61000 the server, 6100k
# site ck. Without root every node shares ours and only the separate
# files keep the sites apart.
as_root=0
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
	as_root=1
	chmod 755 data keys
	chmod 644 keys/*.pub
	chmod 600 data/*.csv keys/*.key
	chown 61000:61000 keys/server.key out
	for k in 1 2 3; do
		chown "6100$k:6100$k" "data/c$k.csv" "data/c${k}_test.csv" \
			"keys/c$k.key"
	done
else
	echo "note: not root, so every node shares one uid"
fi
if [ $as_root -eq 1 ]; then
	check "site c2 cannot read site c1's data" \
		sh -c "! setpriv --reuid=61002 --regid=61002 --clear-groups cat data/c1.csv >/dev/null 2>&1"
	check "the server cannot read any site's data" \
		sh -c "! setpriv --reuid=61000 --regid=61000 --clear-groups cat data/c3_test.csv >/dev/null 2>&1"
	check "no site can read the all-labels test set" \
		sh -c "! setpriv --reuid=61001 --regid=61001 --clear-groups cat data/all_test.csv >/dev/null 2>&1"
fi

node() { # node UID NAME LOG ARGS...
	u=$1
	n=$2
	log=$3
	shift 3
	if [ $as_root -eq 1 ]; then # setpriv execs: $! is the node itself
		setpriv --reuid="$u" --regid="$u" --clear-groups \
			"$FM" node --node "$n" "$@" "$S" $ARGS $MORE >"$log" 2>&1 &
	else
		"$FM" node --node "$n" "$@" "$S" $ARGS $MORE >"$log" 2>&1 &
	fi
	PIDS="$PIDS $!"
	LAST=$!
}

# 1. the deployment
node 61000 server server.log --metrics out/dep.jsonl
SERVER=$LAST
for k in 1 2 3; do node "6100$k" "c$k" "c$k.log"; done
check "the server finishes" wait_pid "$SERVER" 180
wait "$SERVER"
check "the server exits 0" test $? -eq 0
check "10 rounds of metrics" test "$(wc -l <out/dep.jsonl)" -eq 10
check "the server heard each site's counts" \
	test "$(grep -c 'holds 600 training and 150 held-out' server.log)" -eq 3
check "the server loaded no data" sh -c "! grep -q 'FM-DATA.*not used' server.log"
check "every site evaluated every round" \
	test "$(grep -c '"client_evals":3' out/dep.jsonl)" -eq 10
check "the model classifies every label (on data no node held)" \
	"$FM" run "$SRC/tests/integration/sites_check.lua" model=out/model.fm \
	data=data/all_test.csv min=0.5
"$FM" run "$SRC/tests/integration/sites_check.lua" model=out/model.fm \
	data=data/all_test.csv min=0 | tail -1

# 2. the same script simulated, with the three sites as a list
"$FM" run --metrics sim.jsonl "$S" $ARGS save=sim.fm >sim.log 2>&1
check "the simulation runs" test $? -eq 0
check "simulated metrics equal deployed ones (client_accuracy too)" \
	test "$(cols sim.jsonl)" = "$(cols out/dep.jsonl)"
check "the simulation saw federated evaluation" grep -q '"client_accuracy_min"' sim.jsonl

# 3. a site that stalls, dies and is restarted mid-run: the rounds go on
# without it (each waits round_timeout for its update), and once it is
# back it says hello with its counts and trains again
MORE="rounds=200 eval_every=50 round_timeout=1"
node 61000 server server2.log --metrics out/dep2.jsonl
SERVER=$LAST
node 61001 c1 c1b.log
node 61003 c3 c3b.log
node 61002 c2 c2b.log
C2=$LAST
wait_for out/dep2.jsonl '"round":2,' 60
kill -STOP "$C2"
sleep 2.5
kill -9 "$C2"
node 61002 c2 c2c.log
wait_for server2.log 'client host c2 said hello' 30
check "the run with a restarted site finishes" wait_pid "$SERVER" 240
check "the restarted site said hello again" \
	grep -q 'client host c2 said hello' server2.log
check "the round c2 died in went on without it" grep -q '"updates":2' out/dep2.jsonl
last=$(tail -1 out/dep2.jsonl)
check "c2 trained again: the last round had all three sites' updates" \
	sh -c "echo '$last' | grep -q '\"updates\":3'"

[ $fails -eq 0 ] && echo "all sites checks passed" || echo "$fails sites checks failed"
exit $fails
