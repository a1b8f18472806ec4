#!/bin/sh
# SPDX-License-Identifier: MIT
# tree_netns_test.sh FEDMESH SRCDIR: a hierarchy deployed as a tree of
# processes across network namespaces (scripts/hierfavg_tree.lua): the
# root, 2 edge aggregators and 4 client hosts, each in its own namespace,
# joined by veth pairs to a bridge in a "switch" namespace (10.231.9.0/24
# exists only inside these namespaces). Mid-run, edge e2's link is cut:
# the root goes on with e1's subtree (e2's clients drop out); when the
# link returns, e2 is heard from again, gets the root's copy of its model
# and its clients work again.
# Needs root and iproute2 (CI runs as root); exits 77 (skipped) otherwise.
# The namespaces are removed on every exit path.
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
S=$SRC/scripts/hierfavg_tree.lua
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
	echo "skipped: needs root and iproute2"
	exit 77
fi
T=$(mktemp -d)
ID=$$
SW=fmts$ID
NODES="server e1 e2 c1 c2 c3 c4" # addresses .1 .. .7, in this order
PIDS=""
ns() { echo "fmt${1}$ID"; }
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for n in $NODES; do ip netns del "$(ns $n)" 2>/dev/null; done
	ip netns del "$SW" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

ip netns add "$SW" || exit 1
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
i=1
for n in $NODES; do
	ip netns add "$(ns $n)" || exit 1
	ip -n "$(ns $n)" link set lo up
	ip link add "t$n$ID" netns "$(ns $n)" type veth peer name "b$n" netns "$SW"
	ip -n "$(ns $n)" link set "t$n$ID" name eth0
	ip -n "$(ns $n)" addr add "10.231.9.$i/24" dev eth0
	ip -n "$(ns $n)" link set eth0 up
	ip -n "$SW" link set "b$n" master br0
	ip -n "$SW" link set "b$n" up
	i=$((i + 1))
done
check "namespaces are up" ip netns exec "$(ns c4)" true

"$FM" keygen --dir "$T/keys" $NODES >/dev/null 2>&1
ARGS="rounds=40 clients=4 edges=2 every=2 epochs=1 subnet=10.231.9. port=34500 round_timeout=5 edge_timeout=3 min_updates=1 keys=$T/keys"
for n in $NODES; do
	extra=""
	[ $n = server ] && extra="--metrics $T/m.jsonl"
	ip netns exec "$(ns $n)" "$FM" node --node $n $extra "$S" $ARGS >"$T/$n.log" 2>&1 &
	PIDS="$PIDS $!"
	[ $n = server ] && SRV=$!
done
wait_for "$T/server.log" "round    3/40" 240
ip -n "$SW" link set be2 down
echo "cut e2's link"
check "the root gives up on e2 for the round" \
	wait_for "$T/server.log" "edge e2 sent no edge_collected by the deadline" 60
R=$(grep -c "^round " "$T/server.log")
wait_for "$T/server.log" "round   $(printf '%2d' $((R + 2)))/40" 60
ip -n "$SW" link set be2 up
echo "restored e2's link"
check "the root hears from e2 again" \
	wait_for "$T/server.log" "edge e2 is back" 120
check "the root finishes all rounds" wait_pid "$SRV" 300
check "40 rounds of metrics" test "$(wc -l <"$T/m.jsonl")" -eq 40
check "while cut off, e2's clients dropped out and e1's went on" \
	grep -q '"updates":2,"dropped":2' "$T/m.jsonl"
check "e2 got the root's copy of its model when it came back" \
	grep -q "edge e2: round [0-9]*, 2 clients, with its model from the parent" \
	"$T/e2.log"
check "after the link returns e2's clients are back" \
	test "$(tail -n 2 "$T/m.jsonl" | grep -c '"dropped":0')" -eq 2
if [ $fails -ne 0 ]; then
	tail -n 40 "$T/server.log" "$T/e2.log"
	echo "$fails check(s) failed"
	exit 1
fi
echo "all tree network namespace checks passed"
