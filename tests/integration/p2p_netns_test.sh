#!/bin/sh
# SPDX-License-Identifier: MIT
# p2p_netns_test.sh FEDMESH SRCDIR: a decentralized federation across
# network namespaces. 6 peers on a ring (scripts/gossip_ring.lua) and the
# metrics monitor, each in its own namespace, joined by veth pairs to a
# bridge in a "switch" namespace (10.231.9.0/24 exists only inside them).
# Mid-run the ring is partitioned into {1,2,3} and {4,5,6} by cutting the
# links 3-4 and 6-1 (blackhole routes in those peers' namespaces): both
# halves keep training and mixing on their own. Then {1,2,3} is stopped
# (SIGSTOP) while {4,5,6} trains on, so the halves are rounds apart, and
# the links return: the halves mix again and their models re-converge,
# and no peer skips a round to get there (the half ahead waits for the
# one behind, which trains every round; a catch-up that jumped to the
# neighbours' round used to open the same gap to the jumper's other
# neighbours, and peers skipped training again and again).
# Needs root and iproute2 (CI runs as root); exits 77 (skipped) otherwise.
# The namespaces are removed on every exit path.
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
S=$SRC/scripts/gossip_ring.lua
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
	echo "skipped: needs root and iproute2"
	exit 77
fi
T=$(mktemp -d)
ID=$$
SW=fmpsw$ID
NODES="monitor peer1 peer2 peer3 peer4 peer5 peer6"
PIDS=""
ns() { echo "fmp${1}$ID"; }
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for n in $NODES; do ip netns del "$(ns $n)" 2>/dev/null; done
	ip netns del "$SW" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
cols() { sed 's/.*"'"$2"'":\([^,}]*\).*/\1/' "$1"; }
# cut A B / heal A B: the link between peers A and B (1-based)
route() { # route add|del A B
	ip -n "$(ns peer$2)" route "$1" blackhole "10.231.9.$(($3 + 1))/32"
	ip -n "$(ns peer$3)" route "$1" blackhole "10.231.9.$(($2 + 1))/32"
}

ip netns add "$SW" || exit 1
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
i=1
for n in $NODES; do
	ip netns add "$(ns $n)" || exit 1
	ip -n "$(ns $n)" link set lo up
	ip link add "v$n$ID" netns "$(ns $n)" type veth peer name "b$n" netns "$SW"
	ip -n "$(ns $n)" link set "v$n$ID" name eth0
	ip -n "$(ns $n)" addr add "10.231.9.$i/24" dev eth0
	ip -n "$(ns $n)" link set eth0 up
	ip -n "$SW" link set "b$n" master br0
	ip -n "$SW" link set "b$n" up
	i=$((i + 1))
done
check "namespaces are up" ip netns exec "$(ns peer6)" true

"$FM" keygen --dir "$T/keys" $NODES >/dev/null 2>&1
# monitor at 10.231.9.1:7100, peer k at 10.231.9.(k+1):7100 (subnet=)
# Independent initial models and a small learning rate: the disagreement
# between peers is mostly the initial one, so the consensus distance shows
# the mixing: it decays, stalls at the gap between the halves while they
# are cut apart, and decays again once they mix.
ARGS="peers=6 rounds=60 eval_samples=1000 port=7100 keys=$T/keys round_timeout=2 subnet=10.231.9. lr=0.001 init=independent"
for n in $NODES; do
	extra=""
	[ $n = monitor ] && extra="--metrics $T/m.jsonl"
	# peers log each round (FM-ROUND, debug): trained or caught up
	lvl=debug
	[ $n = monitor ] && lvl=info
	FEDMESH_LOG=$lvl ip netns exec "$(ns $n)" "$FM" node --node $n $extra "$S" $ARGS >"$T/$n.log" 2>&1 &
	PIDS="$PIDS $!"
	case $n in
	monitor) MON=$! ;;
	peer[123]) HALF_A="${HALF_A:-} $!" ;;
	*) HALF_B="${HALF_B:-} $!" ;;
	esac
done
# last_round K: the last round peer K finished
last_round() {
	sed -n "s/.*FM-ROUND\] peer $1 round \([0-9]*\):.*/\1/p" "$T/peer$1.log" | tail -n 1
}
wait_for "$T/monitor.log" "round    4/60" 180
route add 3 4
route add 6 1
echo "partitioned the ring into {1,2,3} and {4,5,6}"
wait_for "$T/monitor.log" "round   12/60" 240
# {1,2,3} stops; {4,5,6} trains 4 more rounds than {1,2,3} has (peer 3
# stopped at most one round past its last one), then stops too, so the
# gap stays while the links return
kill -STOP $HALF_A
a=$(last_round 3)
check "half {4,5,6} trains on while {1,2,3} is stopped" \
	wait_for "$T/peer4.log" "FM-ROUND\] peer 4 round $((a + 4)):" 120
kill -STOP $HALF_B
route del 3 4
route del 6 1
kill -CONT $HALF_A $HALF_B
echo "healed the partition: {1,2,3} at round $a or $((a + 1)), {4,5,6} at $((a + 4)) or later"
check "the monitor finishes all rounds" wait_pid "$MON" 300
check "60 rounds of metrics" test "$(wc -l <"$T/m.jsonl")" -eq 60
check "peer3 notices the cut to peer4" grep -q "FM-ABSENT.*neighbour 4" "$T/peer3.log"
check "peer1 notices the cut to peer6" grep -q "FM-ABSENT.*neighbour 6" "$T/peer1.log"
check "peer4 takes peer3 back" grep -q "neighbour 3 is back" "$T/peer4.log"
# every peer reports every round while cut apart (through round 12)
check "both halves kept training: every peer reported rounds 1-12" \
	test "$(head -n 12 "$T/m.jsonl" | grep -c '"dropped":0')" -eq 12
# every peer trained every one of the 60 rounds, once: none skipped
# rounds to catch up, before or after the heal
for k in 1 2 3 4 5 6; do
	check "peer $k trained all 60 rounds, each once" \
		test "$(sed -n "s/.*FM-ROUND\] peer $k round \([0-9]*\): trained.*/\1/p" "$T/peer$k.log" | sort -un | wc -l)" -eq 60
	check "peer $k never caught up by a jump" \
		grep -q "peer $k finished 60 rounds: trained 60, caught up 0 times" "$T/peer$k.log"
done
check "after the heal every peer reports the last round" \
	grep -q '"round":60,.*"dropped":0' "$T/m.jsonl"
cols "$T/m.jsonl" consensus_distance >"$T/cd"
tr '\n' ' ' <"$T/cd"
echo
# disagreement at the end of the partition (round 12) vs at the end
cut=$(sed -n 12p "$T/cd")
healed=$(sed -n 60p "$T/cd")
echo "consensus distance: partitioned $cut, healed $healed"
check "the halves re-converge after the partition heals" \
	awk -v a="$healed" -v b="$cut" 'BEGIN { exit !(a < b / 4) }'
if [ $fails -ne 0 ]; then
	mkdir -p /tmp/p2pns && cp "$T"/*.log "$T"/m.jsonl /tmp/p2pns/ 2>/dev/null
	tail -n 30 "$T/monitor.log" "$T/peer3.log"
	echo "$fails check(s) failed"
	exit 1
fi
echo "all peer-to-peer network namespace checks passed"
