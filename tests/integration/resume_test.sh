#!/bin/sh
# SPDX-License-Identifier: MIT
# resume_test.sh FEDMESH SRCDIR ABI1DIR: exact resume of real deployments
# (tests/integration/resume_deploy.lua: 1 server, 4 client hosts on
# loopback TCP, 8 clients, all of them every round). Each case's metrics
# are compared with the uninterrupted run (`fedmesh run` of the same
# script: a deployment gives the simulation's metrics, deploy_test.sh):
#   1. FedAdam: the server is SIGKILLed in round 4 and restarted with
#      --resume: its moments come from the checkpoint; the client hosts
#      keep running and train round 4 again;
#   2. SCAFFOLD: the server and client host c2 are SIGKILLed while c1's
#      clients train round 4; c2 restarts from its state file
#      (deploy.client_state), the server from its checkpoint (its c), and
#      c1, which trained part of the lost round, starts round 4 again from
#      its c_i of before it;
#   3. the same with c2's state file deleted before its restart: the
#      metrics differ (the comparison can fail), and a state file of
#      another federation is refused;
#   4. a plugin that keeps state it cannot save (a 1.x aggregator: no
#      save/load, not declared stateless) is named in a warning when the
#      first checkpoint is written and on resume; stateless ones are not.
# Every wait is bounded; every process is killed on exit.
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
ABI1=$3
S=$SRC/tests/integration/resume_deploy.lua
T=$(mktemp -d)
PORT=$(free_ports 32000 100) # PORT .. PORT+99
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
cols() { sed 's/.*"'"$2"'":\([^,}]*\).*/\1/' "$1"; }
node() { # node NAME LOG ARGS... (ARGS before the script's own: $ARGS)
	n=$1
	log=$2
	shift 2
	"$FM" node --node "$n" "$@" "$S" $ARGS >"$log" 2>&1 &
	PIDS="$PIDS $!"
	LAST=$!
}
same() { # same WHAT REF GOT KEYS...: every round's KEYS are equal
	what=$1
	ref=$2
	got=$3
	shift 3
	check "$what: 6 rounds of metrics" test "$(wc -l <"$got")" -eq 6
	for k in "$@"; do
		check "$what: $k equals the uninterrupted run's" \
			test "$(cols "$ref" "$k")" = "$(cols "$got" "$k")"
	done
}

"$FM" keygen --dir "$T/keys" server c1 c2 c3 c4 >"$T/keygen.log" 2>&1
K="keys=$T/keys"

# 1. FedAdam: the server dies in round 4 and resumes
ARGS="aggregator=fedadam port=$PORT checkpoint=$T/adam.ckpt $K"
"$FM" run --metrics "$T/adam_ref.jsonl" "$S" $ARGS >"$T/adam_ref.log" 2>&1
check "fedadam: the uninterrupted run" test $? -eq 0
rm -f "$T/adam.ckpt" # the simulation wrote it too
for c in c1 c2 c3 c4; do node $c "$T/a_$c.log"; done
node server "$T/a_s1.log" --metrics "$T/adam_a.jsonl"
wait_for "$T/a_s1.log" "round    3/6" 300
kill -9 "$LAST"
check "fedadam: a checkpoint was written" test -s "$T/adam.ckpt"
echo "checkpoint of the MLP (784-200-200-10) with FedAdam, 3 rounds: $(wc -c <"$T/adam.ckpt") bytes"
node server "$T/a_s2.log" --resume --metrics "$T/adam_b.jsonl"
check "fedadam: the resumed server finishes" wait_pid "$LAST" 300
check "fedadam: the resume is logged" grep -q "FM-RESUME.*resuming after round" "$T/a_s2.log"
same fedadam "$T/adam_ref.jsonl" "$T/adam_b.jsonl" accuracy loss train_loss
for p in $PIDS; do wait_pid "$p" 60; done

# 2. SCAFFOLD: the server and client host c2 die while c1 trains round 4
PORT=$((PORT + 1))
ST=$T/state
ARGS="aggregator=scaffold port=$PORT checkpoint=$T/scf.ckpt client_state=$ST $K"
"$FM" run --metrics "$T/scf_ref.jsonl" "$S" $ARGS >"$T/scf_ref.log" 2>&1
check "scaffold: the uninterrupted run" test $? -eq 0
check "a simulation writes no client state files" test ! -e "$ST"
rm -f "$T/scf.ckpt"
scaffold_kill() { # scaffold_kill TAG: the run up to the kills
	FEDMESH_LOG=debug "$FM" node --node c1 "$S" $ARGS >"$T/$1_c1.log" 2>&1 &
	PIDS="$PIDS $!"
	for c in c2 c3 c4; do node $c "$T/$1_$c.log"; [ $c = c2 ] && C2=$LAST; done
	node server "$T/$1_s1.log" --metrics "$T/$1_a.jsonl"
	SRV=$LAST
	wait_for "$T/$1_c1.log" "FM-STATE.*taken for round 4" 300
	kill -9 "$SRV" "$C2"
	wait_pid "$SRV" 30
	wait_pid "$C2" 30
}
scaffold_kill s
check "scaffold: c2 wrote its state file" test -s "$ST/c2.state"
node c2 "$T/s_c2b.log"
node server "$T/s_s2.log" --resume --metrics "$T/scf_b.jsonl"
check "scaffold: the resumed server finishes" wait_pid "$LAST" 300
check "scaffold: restarted c2 loaded its clients' state" \
	grep -q "FM-STATE.*state loaded from $ST/c2.state" "$T/s_c2b.log"
if grep -q "resuming after round 3" "$T/s_s2.log"; then
	check "scaffold: c1 started round 4 again from its c_i of round 3" \
		grep -q "FM-STATE.*round 4 runs again" "$T/s_c1.log"
fi
same scaffold "$T/scf_ref.jsonl" "$T/scf_b.jsonl" accuracy loss train_loss scaffold_c_norm
for p in $PIDS; do wait_pid "$p" 60; done

# 3. c2's state file lost: its clients' c_i restart at 0, the run differs
PORT=$((PORT + 1))
rm -rf "$ST" "$T/scf.ckpt"
ARGS="aggregator=scaffold port=$PORT checkpoint=$T/scf.ckpt client_state=$ST $K"
scaffold_kill x
rm -f "$ST/c2.state"
node c2 "$T/x_c2b.log"
node server "$T/x_s2.log" --resume --metrics "$T/scf_x.jsonl"
check "without c2's state: the resumed server finishes" wait_pid "$LAST" 300
check "without c2's state: c2 says its clients start from zero" \
	grep -q "no state file" "$T/x_c2b.log"
check "without c2's state: scaffold_c_norm differs from the uninterrupted run" \
	test "$(cols "$T/scf_ref.jsonl" scaffold_c_norm)" != "$(cols "$T/scf_x.jsonl" scaffold_c_norm)"
for p in $PIDS; do wait_pid "$p" 60; done
# a state file of another federation (another seed) is refused, untouched
cp "$ST/c1.state" "$T/c1.copy"
"$FM" node --node c1 "$S" $ARGS seed=4 >"$T/foreign.log" 2>&1
check "another federation's state file: the host refuses to start" test $? -ne 0
check "and says why" grep -q "belongs to another federation" "$T/foreign.log"
check "and leaves the file as it was" cmp -s "$ST/c1.state" "$T/c1.copy"

# 4. warnings for state a checkpoint cannot hold
cat >"$T/warn.lua" <<EOF
local fm = require "fedmesh"
local agg, rounds = ...
fm.plugin_path("$ABI1")
local tr, te = fm.data.synthetic { devices = 10, seed = 1 }
fm.experiment { model = fm.model.mlp { 60, 10 }, train = fm.partition.iid(tr,
  { clients = 10, seed = 1 }), test = te, rounds = tonumber(rounds),
  clients_per_round = 4, aggregator = agg, checkpoint = "$T/w.ckpt",
  resume = true, quiet = true }:simulate()
EOF
for a in a1_mean fedavg; do
	FEDMESH_LOG=warn "$FM" run "$T/warn.lua" $a 2 >"$T/w_$a.log" 2>&1
	check "$a: runs and checkpoints" test $? -eq 0
	FEDMESH_LOG=warn "$FM" run "$T/warn.lua" $a 3 >"$T/w2_$a.log" 2>&1
	check "$a: resumes" test $? -eq 0
	rm -f "$T/w.ckpt"
done
check "a1_mean: the first checkpoint warns that a resume is not exact for it" \
	grep -q "FM-RESUME.*aggregator 'a1_mean' (global) has no save/load.*a resume from it is not exact" "$T/w_a1_mean.log"
check "a1_mean: the resume warns too" \
	grep -q "FM-RESUME.*a1_mean.*this resume is not exact for it" "$T/w2_a1_mean.log"
check "fedavg (stateless): no such warning" \
	sh -c "! grep -q 'FM-RESUME.*no save' '$T/w_fedavg.log' '$T/w2_fedavg.log'"

if [ $fails -ne 0 ]; then
	echo "--- logs"; tail -n 20 "$T"/*.log
	echo "$fails check(s) failed"
	exit 1
fi
echo "all resume checks passed"
