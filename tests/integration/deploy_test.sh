#!/bin/sh
# SPDX-License-Identifier: MIT
# deploy_test.sh FEDMESH SRCDIR: real multi-process federations on loopback
# TCP (scripts/deploy_local.lua, 8 clients on 4 client hosts):
#   1. fedmesh launch gives the same per-round metrics as fedmesh run;
#   2. a client host killed with SIGKILL mid-run: rounds complete without
#      it (deadline + quorum), and restarted, it rejoins;
#   3. the server killed with SIGKILL: restarted with --resume it continues
#      from its checkpoint and ends with the same metrics as a clean run.
# Every wait is bounded; every process is killed on exit.
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
S=$SRC/scripts/deploy_local.lua
T=$(mktemp -d)
PORT=$(free_ports 21000 300) # PORT .. PORT+299
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
# cols FILE KEY: the KEY values of a metrics file, one per line
cols() { sed 's/.*"'"$2"'":\([^,}]*\).*/\1/' "$1"; }
node() { # node NAME LOG ARGS...
	n=$1
	log=$2
	shift 2
	"$FM" node --node "$n" "$@" "$S" $ARGS >"$log" 2>&1 &
	PIDS="$PIDS $!"
	LAST=$!
}

# 1. launch == run
"$FM" keygen --dir "$T/keys" server c1 c2 c3 c4 >"$T/keygen.log" 2>&1
check "keygen makes the five key pairs" test -s "$T/keys/c4.key"
K="keys=$T/keys"
ARGS="rounds=4 clients=8 clients_per_round=8 epochs=1 port=$PORT $K"
"$FM" run --metrics "$T/sim.jsonl" "$S" $ARGS >"$T/sim.log" 2>&1
check "simulation runs" test $? -eq 0
"$FM" launch --metrics "$T/dep.jsonl" "$S" $ARGS >"$T/dep.log" 2>&1
check "launch runs 5 processes to the end" test $? -eq 0
check "launch streams every node's output" grep -q "^\[c4\] " "$T/dep.log"
for k in accuracy loss train_loss; do
	check "deployed $k equals simulated $k" \
		test "$(cols "$T/sim.jsonl" $k)" = "$(cols "$T/dep.jsonl" $k)"
done

# SCAFFOLD deployed: c travels from the server, dc_i back, and each
# client's c_i stays on its home host between rounds (4 of 8 clients a
# round, so clients come back): the same metrics as the simulation
A="rounds=3 clients=8 clients_per_round=4 epochs=1 aggregator=scaffold port=$((PORT + 200)) $K"
"$FM" run --metrics "$T/ssim.jsonl" "$S" $A >"$T/ssim.log" 2>&1
check "scaffold simulation runs" test $? -eq 0
"$FM" launch --metrics "$T/sdep.jsonl" "$S" $A >"$T/sdep.log" 2>&1
check "scaffold launch runs to the end" test $? -eq 0
for k in accuracy loss scaffold_c_norm; do
	check "scaffold: deployed $k equals simulated $k" \
		test "$(cols "$T/ssim.jsonl" $k)" = "$(cols "$T/sdep.jsonl" $k)"
done

# scripts/fedavg_fmnist.lua deploys too, with the same result
F="rounds=2 epochs=1 port=$((PORT + 100)) keys=$T/keys csv=$T/f.csv jsonl=$T/f.jsonl"
"$FM" run --metrics "$T/fsim.jsonl" "$SRC/scripts/fedavg_fmnist.lua" $F >"$T/fsim.log" 2>&1
rm -f "$T/f.csv" # the simulation wrote it too: the server must write it again
"$FM" launch --metrics "$T/fdep.jsonl" "$SRC/scripts/fedavg_fmnist.lua" $F >"$T/fdep.log" 2>&1
check "fedavg_fmnist.lua: launch runs to the end" test $? -eq 0
check "fedavg_fmnist.lua: launch == run" \
	test "$(cols "$T/fsim.jsonl" accuracy)" = "$(cols "$T/fdep.jsonl" accuracy)"
check "fedavg_fmnist.lua: deployed CSV written by the server" test -s "$T/f.csv"

# Ctrl-C on the launcher stops every node
PORT=$((PORT + 1))
"$FM" launch "$S" rounds=500 clients=8 clients_per_round=8 epochs=1 port=$PORT $K \
	>"$T/int.log" 2>&1 &
LP=$!
PIDS="$PIDS $LP"
wait_for "$T/int.log" "round    1/500" 120
kill -INT "$LP"
check "the launcher exits after Ctrl-C" wait_pid "$LP" 60
check "no node outlives it" sh -c "! pgrep -f '[p]ort=$PORT' >/dev/null"
check "the stop was reported" grep -q "stopping every node" "$T/int.log"

# a server whose port is taken says so and exits; it does not crash
# (it used to free an uninitialised result: SIGSEGV)
PORT=$((PORT + 1))
"$FM" node --node server "$S" rounds=1 port=$PORT $K >"$T/busy1.log" 2>&1 &
LAST=$!
PIDS="$PIDS $LAST"
wait_for "$T/busy1.log" "FM-DEPLOY" 60
"$FM" node --node server "$S" rounds=1 port=$PORT $K >"$T/busy2.log" 2>&1
check "a second server on a taken port fails with status 1" test $? -eq 1
check "and says the port is in use" grep -q "Address already in use" "$T/busy2.log"
kill -9 "$LAST" 2>/dev/null

# 2. a client host dies mid-run and comes back (8 clients of 7,500
# samples: a round takes long enough for the kill to land inside one)
PORT=$((PORT + 1))
ARGS="rounds=12 clients=8 clients_per_round=8 epochs=1 port=$PORT round_timeout=5 min_updates=1 $K"
node server "$T/s2.log" --metrics "$T/m2.jsonl"
SRV=$LAST
for c in c1 c2 c3 c4; do node $c "$T/$c.log"; [ $c = c2 ] && C2=$LAST; done
# an impostor: c1's name with a key the deployment does not list
"$FM" keygen --dir "$T/evil" c1 >/dev/null 2>&1
cp "$T/keys/server.pub" "$T/evil/"
"$FM" node --node c1 "$S" $ARGS keys="$T/evil" >"$T/evil.log" 2>&1 &
PIDS="$PIDS $!"
wait_for "$T/s2.log" "round    2/12" 120
kill -9 "$C2"
wait_for "$T/s2.log" "round    4/12" 120
node c2 "$T/c2b.log"
check "server finishes all rounds" wait_pid "$SRV" 180
check "12 rounds of metrics" test "$(wc -l <"$T/m2.jsonl")" -eq 12
check "rounds without c2 dropped its clients" grep -q '"dropped":[1-9]' "$T/m2.jsonl"
check "after the restart c2's clients are back" \
	test "$(tail -n 3 "$T/m2.jsonl" | grep -c '"dropped":0')" -eq 3
check "the dropout was logged" grep -q "FM-DROPOUT" "$T/s2.log"
check "the impostor's key was refused and logged" grep -q "FM-AUTH.*refused" "$T/s2.log"
for p in $PIDS; do wait_pid "$p" 30; done

# 3. the server dies and resumes from its checkpoint
PORT=$((PORT + 1))
ARGS="rounds=6 clients=8 clients_per_round=8 epochs=2 port=$PORT checkpoint=$T/ckpt $K"
"$FM" run --metrics "$T/clean.jsonl" "$S" $ARGS >"$T/clean.log" 2>&1
for c in c1 c2 c3 c4; do node $c "$T/r$c.log"; done
node server "$T/s3.log" --metrics "$T/m3a.jsonl"
wait_for "$T/s3.log" "round    3/6" 120
kill -9 "$LAST"
check "a checkpoint was written" test -s "$T/ckpt"
node server "$T/s3b.log" --resume --metrics "$T/m3b.jsonl"
check "resumed server finishes" wait_pid "$LAST" 180
check "resume is logged" grep -q "FM-RESUME" "$T/s3b.log"
check "resumed metrics cover all 6 rounds" test "$(wc -l <"$T/m3b.jsonl")" -eq 6
for k in accuracy loss; do
	check "resumed $k equals the uninterrupted run" \
		test "$(cols "$T/clean.jsonl" $k)" = "$(cols "$T/m3b.jsonl" $k)"
done

if [ $fails -ne 0 ]; then
	echo "--- logs"; tail -n 30 "$T"/*.log
	echo "$fails check(s) failed"
	exit 1
fi
echo "all deployment checks passed"
