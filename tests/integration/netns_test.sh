#!/bin/sh
# SPDX-License-Identifier: MIT
# netns_test.sh FEDMESH SRCDIR: a federation across network namespaces.
# 1 server and 4 client hosts, each in its own namespace, joined by veth
# pairs to a bridge in a "switch" namespace (addresses 10.231.7.0/24 exist
# only inside these namespaces). Mid-run, client host c3's link is cut:
# its clients drop out of those rounds; when the link returns it rejoins.
# Needs root and iproute2 (CI runs as root); exits 77 (skipped) otherwise.
# The namespaces are removed on every exit path.
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
S=$SRC/scripts/deploy_local.lua
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
	echo "skipped: needs root and iproute2"
	exit 77
fi
T=$(mktemp -d)
ID=$$
SW=fmsw$ID
NODES="server c1 c2 c3 c4"
PIDS=""
ns() { echo "fm${1}$ID"; }
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for n in $NODES; do ip netns del "$(ns $n)" 2>/dev/null; done
	ip netns del "$SW" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

# the switch, then one namespace per node with a veth into the bridge
ip netns add "$SW" || exit 1
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
i=1
for n in $NODES; do
	ip netns add "$(ns $n)" || exit 1
	ip -n "$(ns $n)" link set lo up
	ip link add "v$n$ID" netns "$(ns $n)" type veth peer name "b$n" netns "$SW"
	ip -n "$(ns $n)" link set "v$n$ID" name eth0
	ip -n "$(ns $n)" addr add "10.231.7.$i/24" dev eth0
	ip -n "$(ns $n)" link set eth0 up
	ip -n "$SW" link set "b$n" master br0
	ip -n "$SW" link set "b$n" up
	i=$((i + 1))
done
check "namespaces are up" ip netns exec "$(ns c4)" true

"$FM" keygen --dir "$T/keys" $NODES >/dev/null 2>&1
ARGS="rounds=12 clients=8 clients_per_round=8 epochs=1 host=10.231.7.1 port=5555 round_timeout=5 min_updates=1 keys=$T/keys"
for n in $NODES; do
	extra=""
	[ $n = server ] && extra="--metrics $T/m.jsonl"
	ip netns exec "$(ns $n)" "$FM" node --node $n $extra "$S" $ARGS >"$T/$n.log" 2>&1 &
	PIDS="$PIDS $!"
	[ $n = server ] && SRV=$!
done
wait_for "$T/server.log" "round    2/12" 180
ip -n "$SW" link set bc3 down
echo "cut c3's link"
wait_for "$T/server.log" "round    5/12" 180
ip -n "$SW" link set bc3 up
echo "restored c3's link"
check "server finishes all rounds" wait_pid "$SRV" 240
check "12 rounds of metrics" test "$(wc -l <"$T/m.jsonl")" -eq 12
check "rounds during the cut dropped c3's clients" grep -q '"dropped":[1-9]' "$T/m.jsonl"
check "after the link returns c3's clients are back" \
	test "$(tail -n 2 "$T/m.jsonl" | grep -c '"dropped":0')" -eq 2
if [ $fails -ne 0 ]; then
	tail -n 40 "$T/server.log"
	echo "$fails check(s) failed"
	exit 1
fi
echo "all network namespace checks passed"
