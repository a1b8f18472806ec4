#!/bin/sh
# SPDX-License-Identifier: MIT
# p2p_test.sh FEDMESH SRCDIR: decentralized federations as real processes
# (scripts/gossip_ring.lua: a ring of 6 peers plus a metrics monitor, each
# its own process, on loopback TCP with CURVE):
#   1. fedmesh launch gives the same per-peer accuracies as fedmesh run;
#   2. a peer killed with SIGKILL mid-run: its neighbours notice at the
#      round deadline and keep mixing with the others; restarted, the peer
#      catches up with its neighbours' round and rejoins; the run completes;
#   4. (below 2) push-sum keeps its mass across a peer's SIGKILL and
#      --resume restart;
#   3. the peers' consensus instances talk (the peerlink test consensus,
#      tests/plugins/peerlink.c, found through FEDMESH_PLUGIN_PATH):
#      deployed, the messages and 0 ms timers are counted as simulated.
# Every wait is bounded; every process is killed on exit.
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
S=$SRC/scripts/gossip_ring.lua
T=$(mktemp -d)
PORT=$(free_ports 24000 50) # PORT .. PORT+49
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
cols() { sed 's/.*"'"$2"'":\([^,}]*\).*/\1/' "$1"; }
node() { # node NAME LOG: one node of the deployment in the background
	"$FM" node --node "$1" "$S" $ARGS >"$2" 2>&1 &
	PIDS="$PIDS $!"
	LAST=$!
}
PEERS="peer1 peer2 peer3 peer4 peer5 peer6"

# 1. launch == run
ARGS="peers=6 rounds=4 eval_samples=2000 port=$PORT keys=$T/keys"
"$FM" run --threads 2 --metrics "$T/sim.jsonl" "$S" $ARGS >"$T/sim.log" 2>&1
check "simulation runs" test "$(wc -l <"$T/sim.jsonl")" -eq 4
"$FM" launch --metrics "$T/dep.jsonl" "$S" $ARGS >"$T/launch.log" 2>&1
check "launch runs 7 processes to the end" test "$(wc -l <"$T/dep.jsonl")" -eq 4
for k in accuracy accuracy_min accuracy_max train_loss; do
	cols "$T/sim.jsonl" $k >"$T/a"
	cols "$T/dep.jsonl" $k >"$T/b"
	check "deployed $k equals simulated" cmp -s "$T/a" "$T/b"
done
check "the monitor estimates the consensus distance" \
	grep -q '"consensus_distance":0\.[0-9]' "$T/dep.jsonl"

# 2. kill a peer, restart it
ARGS="peers=6 rounds=40 eval_samples=1000 port=$((PORT + 20)) keys=$T/keys round_timeout=3"
"$FM" node --node monitor --metrics "$T/kill.jsonl" "$S" $ARGS >"$T/monitor.log" 2>&1 &
MON=$!
PIDS="$PIDS $MON"
for p in $PEERS; do
	node $p "$T/$p.log"
	[ $p = peer3 ] && P3=$LAST
done
wait_for "$T/monitor.log" "round    3/40" 180
kill -9 "$P3"
echo "killed peer3"
check "neighbour peer2 notices at the deadline" \
	wait_for "$T/peer2.log" "FM-ABSENT.*neighbour 3" 60
check "neighbour peer4 notices at the deadline" \
	wait_for "$T/peer4.log" "FM-ABSENT.*neighbour 3" 60
node peer3 "$T/peer3b.log"
echo "restarted peer3"
check "the restarted peer catches up" \
	wait_for "$T/peer3b.log" "catching up" 120
check "its neighbours take it back" wait_for "$T/peer2.log" "neighbour 3 is back" 60
check "the monitor finishes all rounds" wait_pid "$MON" 240
check "40 rounds of metrics" test "$(wc -l <"$T/kill.jsonl")" -eq 40
check "rounds without peer3 miss its report" grep -q '"dropped":1' "$T/kill.jsonl"
check "after its return every peer reports" \
	test "$(tail -n 2 "$T/kill.jsonl" | grep -c '"dropped":0')" -eq 2
check "the peers finish" wait_for "$T/peer6.log" "finished 40 rounds" 60
check "the restarted peer finishes" wait_for "$T/peer3b.log" "finished 40 rounds" 60

# 4. push-sum keeps its mass across a kill: while peer3 is down its
# neighbours' sends to it fail and they keep those shares; restarted with
# --resume it goes on from its state file (its model and w, written after
# every round), and a round it resends is not counted twice. The mass
# sum w = 6 x the mean pushsum_weight of a round every peer reported; at
# most what reached peer3 in the round it died is lost (its two
# neighbours' shares, w/3 each). Before the fix the shares sent to the
# dead peer were lost every round and it came back with w = 1.
ARGS="peers=6 rounds=30 eval_samples=500 port=$((PORT + 30)) keys=$T/keys round_timeout=3 consensus=pushsum checkpoint=$T/state"
"$FM" node --node monitor --metrics "$T/ps.jsonl" "$S" $ARGS >"$T/psmon.log" 2>&1 &
MON=$!
PIDS="$PIDS $MON"
for p in $PEERS; do
	node $p "$T/ps$p.log"
	[ $p = peer3 ] && P3=$LAST
done
wait_for "$T/psmon.log" "round    3/30" 180
kill -9 "$P3"
echo "killed push-sum peer3"
check "push-sum: peer2 notices" wait_for "$T/pspeer2.log" "FM-ABSENT.*neighbour 3" 60
check "push-sum: peer3 left its state file" test -s "$T/state/peer3.state"
"$FM" node --node peer3 --resume "$S" $ARGS >"$T/pspeer3b.log" 2>&1 &
PIDS="$PIDS $!"
check "push-sum: the restarted peer resumes from its state" \
	wait_for "$T/pspeer3b.log" "FM-RESUME.*peer 3 resumes after round" 120
check "push-sum: the monitor finishes all rounds" wait_pid "$MON" 240
check "push-sum: 30 rounds of metrics" test "$(wc -l <"$T/ps.jsonl")" -eq 30
# sum w of every round all six reported, in order
grep '"dropped":0' "$T/ps.jsonl" | cols /dev/stdin pushsum_weight |
	awk '{ printf "%.12f\n", 6 * $1 }' >"$T/mass"
echo "push-sum mass, rounds every peer reported: $(tr '\n' ' ' <"$T/mass")"
check "push-sum: the mass is 6 before the kill" \
	awk 'NR <= 2 && ($1 < 6 - 1e-9 || $1 > 6 + 1e-9) { bad = 1 }
	    END { exit bad || NR < 3 }' "$T/mass"
check "push-sum: after the restart at most one round of shares to peer3 is lost" \
	awk 'END { exit !($1 > 6 - 0.7 && $1 < 6 + 1e-9) }' "$T/mass"
check "push-sum: and the mass holds from then on (the last 3 rounds)" \
	sh -c "tail -n 3 '$T/mass' | awk 'NR == 1 { a = \$1 } \$1 - a > 1e-9 || a - \$1 > 1e-9 { bad = 1 } END { exit bad }'"
cp "$T/state/peer3.state" "$T/state/peer4.state"
"$FM" node --node peer4 --resume "$S" $ARGS >"$T/psbad.log" 2>&1
check "push-sum: another peer's state file is refused with status 1" test $? -eq 1
check "push-sum: and the reason" grep -q "peer4.state belongs to another run (peer 3" "$T/psbad.log"

# 3. plugin messages between deployed peers
if [ -n "${FEDMESH_PLUGIN_PATH:-}" ]; then
	ARGS="peers=6 rounds=4 eval_samples=500 port=$((PORT + 40)) keys=$T/keys consensus=peerlink"
	"$FM" run --threads 2 --metrics "$T/psim.jsonl" "$S" $ARGS >"$T/psim.log" 2>&1
	check "peerlink simulation runs" test "$(wc -l <"$T/psim.jsonl")" -eq 4
	"$FM" launch --metrics "$T/pdep.jsonl" "$S" $ARGS >"$T/plaunch.log" 2>&1
	check "peerlink launch runs to the end" test "$(wc -l <"$T/pdep.jsonl")" -eq 4
	for k in peer_msgs peer_early peer_timers peer_bad peer_send_failed \
	    peer_enoent accuracy; do
		cols "$T/psim.jsonl" $k >"$T/a"
		cols "$T/pdep.jsonl" $k >"$T/b"
		check "deployed $k equals simulated" cmp -s "$T/a" "$T/b"
	done
	check "each peer hears its 2 neighbours from round 2 on" \
		test "$(cols "$T/pdep.jsonl" peer_msgs | tr '\n' ' ')" = "0 2 2 2 "
	check "no message dropped" sh -c "! grep -q FM-PLUGIN-MSG '$T/plaunch.log'"
else
	echo "skipped the peerlink deployment (no FEDMESH_PLUGIN_PATH)"
fi

if [ $fails -ne 0 ]; then
	tail -n 20 "$T/monitor.log" "$T/peer2.log" "$T/peer3b.log"
	echo "$fails check(s) failed"
	exit 1
fi
echo "all peer-to-peer deployment checks passed"
