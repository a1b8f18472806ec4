#!/bin/sh
# SPDX-License-Identifier: MIT
# impostor_test.sh FEDMESH SRCDIR: a listed node cannot take another
# node's slot (scripts/deploy_local.lua, 8 clients on 4 client hosts, CURVE
# on loopback TCP, the server listening with handover as deployed):
#   1. while c1 is connected, a real process holding c2's own valid key
#      dials the server under c1's name: the server refuses its messages
#      (FM-AUTH) and sends it nothing; c1 keeps receiving its TRAIN models,
#      so every round has c1's updates; the impostor never sees a model,
#      nor the shutdown meant for c1;
#   2. c1 killed with SIGKILL and restarted under its name gets its slot
#      back: the last rounds have its updates again.
# Every wait is bounded; every process is killed on exit.
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
S=$SRC/scripts/deploy_local.lua
T=$(mktemp -d)
PORT=$(free_ports 30000 100)
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
node() { # node NAME LOG ARGS...
	n=$1
	log=$2
	shift 2
	"$FM" node --node "$n" "$@" "$S" $ARGS >"$log" 2>&1 &
	PIDS="$PIDS $!"
	LAST=$!
}
# dropped ROUND: the "dropped" count of a round in the metrics
dropped() { sed -n "$1p" "$T/m.jsonl" | sed 's/.*"dropped":\([0-9]*\).*/\1/'; }

"$FM" keygen --dir "$T/keys" server c1 c2 c3 c4 >"$T/keygen.log" 2>&1
check "keygen makes the five key pairs" test -s "$T/keys/c4.key"
# The impostor's key folder: c2's own (listed) key pair under c1's name,
# so `fedmesh node --node c1` dials as c1 with c2's key.
mkdir -m 700 "$T/imp"
cp "$T/keys/c2.key" "$T/imp/c1.key"
cp "$T/keys/server.pub" "$T/imp/"

ARGS="rounds=24 clients=8 clients_per_round=8 epochs=1 port=$PORT round_timeout=5 min_updates=1 keys=$T/keys"
node server "$T/s.log" --metrics "$T/m.jsonl"
SRV=$LAST
for c in c1 c2 c3 c4; do node $c "$T/$c.log"; [ $c = c1 ] && C1=$LAST; done
wait_for "$T/s.log" "client host c1 joined" 120
FEDMESH_LOG=debug "$FM" node --node c1 "$S" $ARGS keys="$T/imp" >"$T/imp.log" 2>&1 &
IMP=$!
PIDS="$PIDS $IMP"
t0=$(date +%s)
echo "started the impostor (c2's key, c1's name)"
check "the server refuses the impostor's messages and says why" \
	wait_for "$T/s.log" "FM-AUTH.*identity 'c1' is not the node name its key is listed under ('c2')" 60
# three whole rounds with the impostor connected, then c1 dies
refused=$(grep -n "FM-AUTH.*identity 'c1'" "$T/s.log" | head -n 1 | cut -d: -f1)
now=$(grep -c "^round " "$T/s.log")
wait_for "$T/s.log" "round  *$((now + 3))/24" 120
kill -9 "$C1"
echo "killed c1"
wait_for "$T/s.log" "FM-DROPOUT" 60
node c1 "$T/c1b.log"
C1B=$LAST
echo "restarted c1"
check "the server finishes all rounds" wait_pid "$SRV" 240
check "24 rounds of metrics" test "$(wc -l <"$T/m.jsonl")" -eq 24
ok=1
for r in $(seq 1 $((now + 3))); do
	[ "$(dropped $r)" = 0 ] || ok=0
done
check "rounds 1-$((now + 3)), with the impostor connected from round $((now + 1)) on, have every update (c1's too)" \
	test $ok -eq 1
check "the refusal came before those rounds ended" \
	test "$refused" -lt "$(grep -n "^round  *$((now + 3))/24" "$T/s.log" | cut -d: -f1)"
check "the impostor never received a model" sh -c "! grep -q FM-TRAIN '$T/imp.log'"
check "the impostor did not get c1's shutdown either" kill -0 "$IMP"
# it heartbeats every second; the refusal is logged once a minute
minutes=$((($(date +%s) - t0) / 60 + 1))
check "the refusal is logged once a minute, not per heartbeat" \
	test "$(grep -c "FM-AUTH.*identity 'c1'" "$T/s.log")" -le $minutes
check "c1's death dropped its clients" grep -q '"dropped":[1-9]' "$T/m.jsonl"
check "restarted c1 has its slot back: the last 2 rounds have every update" \
	test "$(tail -n 2 "$T/m.jsonl" | grep -c '"dropped":0')" -eq 2
check "the server moved c1 to its new connection" grep -q "FM-AUTH.*c1 is on a new connection" "$T/s.log"
check "restarted c1 ends on the server's shutdown" wait_pid "$C1B" 30
kill -9 "$IMP" 2>/dev/null

if [ $fails -ne 0 ]; then
	echo "--- logs"; tail -n 30 "$T"/s.log "$T"/imp.log "$T"/c1*.log
	echo "$fails check(s) failed"
	exit 1
fi
echo "all impostor checks passed"
