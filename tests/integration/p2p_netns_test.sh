#!/bin/sh
# SPDX-License-Identifier: MIT
# p2p_netns_test.sh FEDMESH SRCDIR: a decentralized federation across
# network namespaces. 6 peers on a ring (scripts/gossip_ring.lua) and the
# metrics monitor, each in its own namespace, joined by veth pairs to a
# bridge in a "switch" namespace (10.231.9.0/24 exists only inside them).
# Mid-run the ring is partitioned into {1,2,3} and {4,5,6} by cutting the
# links 3-4 and 6-1 (blackhole routes in those peers' namespaces): both
# halves keep training and mixing on their own; when the links return the
# halves mix again and their models re-converge.
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
ARGS="peers=6 rounds=36 eval_samples=1000 port=7100 keys=$T/keys round_timeout=2 subnet=10.231.9. lr=0.001 init=independent"
for n in $NODES; do
	extra=""
	[ $n = monitor ] && extra="--metrics $T/m.jsonl"
	ip netns exec "$(ns $n)" "$FM" node --node $n $extra "$S" $ARGS >"$T/$n.log" 2>&1 &
	PIDS="$PIDS $!"
	[ $n = monitor ] && MON=$!
done
wait_for "$T/monitor.log" "round    4/36" 180
route add 3 4
route add 6 1
echo "partitioned the ring into {1,2,3} and {4,5,6}"
wait_for "$T/monitor.log" "round   12/36" 240
route del 3 4
route del 6 1
echo "healed the partition"
check "the monitor finishes all rounds" wait_pid "$MON" 300
check "36 rounds of metrics" test "$(wc -l <"$T/m.jsonl")" -eq 36
check "peer3 notices the cut to peer4" grep -q "FM-ABSENT.*neighbour 4" "$T/peer3.log"
check "peer1 notices the cut to peer6" grep -q "FM-ABSENT.*neighbour 6" "$T/peer1.log"
check "peer4 takes peer3 back" grep -q "neighbour 3 is back" "$T/peer4.log"
# every peer reports every round while cut apart (through round 12, when
# the heal starts); after the heal a peer that finds its neighbours ahead
# catches up, skipping rounds (FM-REJOIN), so only the last round must
# have every peer again
check "both halves kept training: every peer reported rounds 1-12" \
	test "$(head -n 12 "$T/m.jsonl" | grep -c '"dropped":0')" -eq 12
check "after the heal every peer reports the last round" \
	grep -q '"round":36,.*"dropped":0' "$T/m.jsonl"
cols "$T/m.jsonl" consensus_distance >"$T/cd"
tr '\n' ' ' <"$T/cd"
echo
# disagreement at the end of the partition (round 12) vs at the end
cut=$(sed -n 12p "$T/cd")
healed=$(sed -n 36p "$T/cd")
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
