#!/bin/sh
# SPDX-License-Identifier: MIT
# tree_test.sh FEDMESH SRCDIR: hierarchies deployed as a tree of processes
# (scripts/hierfavg_tree.lua: a root, edge aggregators on their own
# processes, one client host per client), on loopback TCP with CURVE:
#   1. fedmesh launch gives the simulation's per-round metrics (all but
#      traffic and time): 2 levels (FedAvg edges under a FedAdam root, on
#      Fashion-MNIST), 3 levels (FedAvgM root, the middle level in the
#      root's process, synthetic data);
#   2. an edge killed with SIGKILL mid-round: its subtree's round is lost,
#      the root goes on with its quorum; restarted under its name, the
#      edge gets its model from the root and its clients work again;
#   3. keys per level: a client host of edge e1 dialing edge e2, and one
#      dialing the root, are refused (FM-AUTH).
# Every wait is bounded; every process is killed on exit (KEEP=DIR keeps
# the logs there).
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
S=$SRC/scripts/hierfavg_tree.lua
T=$(mktemp -d)
# Ports in 34000..35999, inside the kernel's ephemeral range: a port can
# be taken by some connection's local end, not only by a listener, so
# each part takes a span that no socket at all uses, right before it runs.
free_span() { # free_span BASE SPAN: the first P >= BASE, in steps of SPAN
	p=$1
	while [ "$p" -lt 36000 ]; do
		if ! ss -Htan 2>/dev/null | awk -v lo="$p" -v hi="$(($p + $2))" '
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
PORT=$(free_ports 34000 200)
PIDS=""
cleanup() {
	[ -n "${KEEP:-}" ] && cp -r "$T" "$KEEP"
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
# a metrics file without traffic and time, one row per line
strip() { sed -E 's/"(bytes_sent|bytes_received|seconds)":[^,}]*,?//g' "$1"; }
node() { # node NAME LOG EXTRA-ARGS: a node of the deployment $ARGS
	n=$1
	log=$2
	shift 2
	"$FM" node --node "$n" "$S" $ARGS "$@" >"$log" 2>&1 &
	PIDS="$PIDS $!"
	LAST=$!
}
K="keys=$T/keys"

# 1. launch == run, 2 levels: FedAvg edges, FedAdam root every 2 rounds
A="rounds=4 clients=8 edges=2 every=2 port=$(free_span $PORT 10) $K"
"$FM" run --metrics "$T/sim1.jsonl" "$S" $A >"$T/sim1.log" 2>&1
check "2 levels: simulation runs" test $? -eq 0
"$FM" launch --metrics "$T/dep1.jsonl" "$S" $A >"$T/dep1.log" 2>&1
check "2 levels: launch runs the root, 2 edges and 8 client hosts" test $? -eq 0
check "the launcher made the edges' keys" test -s "$T/keys/e2.key"
check "edge e2 ran the rounds in its own process" \
	grep -q '^\[e2\] .*FM-EDGE.*edge e2: round 4, 4 clients' "$T/dep1.log"
check "2 levels: 4 rows of metrics" test "$(wc -l <"$T/dep1.jsonl")" -eq 4
check "2 levels (FedAdam root): launch == run, every metric" \
	test "$(strip "$T/sim1.jsonl")" = "$(strip "$T/dep1.jsonl")"
check "the root aggregated in rounds 2 and 4" \
	test "$(grep -c '"root_aggregated":1' "$T/dep1.jsonl")" -eq 2
check "and the edges drifted apart in between" \
	grep -q '"edge_divergence":[0-9.e-]*[1-9]' "$T/dep1.jsonl"

# 3 levels: a FedAvgM root over 2 regions (in the root's process) over 4
# edge processes
A="rounds=8 clients=8 edges=4 levels=3 every=2 root=fedavgm root_lr=1 data=synthetic port=$(free_span $((PORT + 10)) 10) $K"
"$FM" run --metrics "$T/sim2.jsonl" "$S" $A >"$T/sim2.log" 2>&1
check "3 levels: simulation runs" test $? -eq 0
"$FM" launch --metrics "$T/dep2.jsonl" "$S" $A >"$T/dep2.log" 2>&1
check "3 levels: launch runs the root, 4 edges and 8 client hosts" test $? -eq 0
check "3 levels (FedAvgM root): launch == run, every metric" \
	test "$(strip "$T/sim2.jsonl")" = "$(strip "$T/dep2.jsonl")"
check "3 levels: the root aggregated every 4 rounds" \
	test "$(grep -c '"root_aggregated":1' "$T/dep2.jsonl")" -eq 2

# a deployment whose client hosts span edges is refused at load time
cat >"$T/span.lua" <<EOF
local fm = require "fedmesh"
local train, test = fm.data.synthetic { devices = 8, max_per_device = 50 }
local t = fm.topology.hierarchical { fanouts = { 2, 4 } }
fm.experiment { topology = t, model = fm.model.mlp { 60, 8, 10 },
  train = fm.partition.natural(train), test = test, rounds = 1,
  deploy = { server = "127.0.0.1:$((PORT + 21))", keys = "$T/keys",
    clients = { "c1", "c2", "c3", "c4" },
    edges = { "127.0.0.1:$((PORT + 22))", "127.0.0.1:$((PORT + 23))" } } }
EOF
"$FM" run "$T/span.lua" >"$T/span.log" 2>&1
check "client hosts spanning edges are refused" test $? -ne 0
check "and the message says how to fix it" grep -q \
	"client host 'c1' holds client 1 (edge edge1) and client 5 (edge edge2).*list one client host per client (8 names" \
	"$T/span.log"
sed -i 's/"127.0.0.1:[0-9]*" } } }/} } }/' "$T/span.lua"
"$FM" run "$T/span.lua" >"$T/span2.log" 2>&1
check "as many edges as the topology has, or a clear error" grep -q \
	"'edges' must list the topology's 2 edge aggregators in edge order" \
	"$T/span2.log"

# 2. an edge dies mid-round and comes back; 3. keys per level
P=$(free_span $((PORT + 30)) 10)
ARGS="rounds=20 clients=8 edges=2 every=2 epochs=2 port=$P round_timeout=5 edge_timeout=3 min_updates=1 $K"
node server "$T/s.log" --metrics "$T/m.jsonl"
SRV=$LAST
node e1 "$T/e1.log"
E1=$LAST
node e2 "$T/e2.log"
E2=$LAST
for k in 1 2 3 4 5 6 7 8; do node c$k "$T/c$k.log"; done
# client host c1 (of edge e1) dialing edge e2, then the root: its key is
# in neither's list
node c1 "$T/evil1.log" swap=1
node c1 "$T/evil2.log" tree=0
# e1 dies mid-round and is restarted at once: its hello tells the root
wait_for "$T/e1.log" "edge e1: round 4," 240
kill -9 "$E1"
echo "killed e1 in round 4"
node e1 "$T/e1b.log"
# e2 dies mid-round and stays dead past the deadline, then comes back
wait_for "$T/e2.log" "edge e2: round 9," 240
kill -9 "$E2"
echo "killed e2 in round 9"
wait_for "$T/s.log" "edge e2 sent no edge_collected by the deadline" 60
node e2 "$T/e2b.log"
check "the root finishes all rounds" wait_pid "$SRV" 300
check "20 rounds of metrics" test "$(wc -l <"$T/m.jsonl")" -eq 20
check "a dead edge's round is lost: its 4 clients dropped, the others' counted" \
	test "$(grep -c '"updates":4,"dropped":4' "$T/m.jsonl")" -ge 2
check "the root logged e1's restart mid-round" \
	grep -q "FM-EDGE.*edge e1 restarted mid-round; its 4 sampled clients drop out" \
	"$T/s.log"
check "and e2's missed deadline" \
	grep -q "FM-EDGE.*edge e2 sent no edge_collected by the deadline; its 4" \
	"$T/s.log"
check "the restarted edges rejoined" \
	test "$(grep -c "FM-JOIN.*edge e[12] joined; it gets its model" "$T/s.log")" -eq 2
check "and got their model from the root" sh -c "grep -q 'edge e1: round [0-9]*, 4 clients, with its model from the parent' '$T/e1b.log' && grep -q 'edge e2: round [0-9]*, 4 clients, with its model from the parent' '$T/e2b.log'"
# the round each restarted edge came back in (its first with a model)
back() { sed -n "s/.*edge $1: round \([0-9]*\), 4 clients, with its model.*/\1/p" "$2" | head -n 1; }
B1=$(back e1 "$T/e1b.log")
B2=$(back e2 "$T/e2b.log")
B=$(( ${B1:-99} > ${B2:-99} ? ${B1:-99} : ${B2:-99} ))
echo "e1 back in round ${B1:-never}, e2 in round ${B2:-never}"
check "both came back before the last round" test "$B" -lt 20
check "from then on every edge's clients work again" test "$(awk -v b="$B" '
    { r = $0; sub(/.*"round":/, "", r); r += 0
      d = $0; sub(/.*"dropped":/, "", d); d += 0
      if (r >= b && d != 0) bad++ }
    END { print bad + 0 }' "$T/m.jsonl")" -eq 0
check "edge e2 refused c1's key (c1 belongs to e1)" \
	grep -q "FM-AUTH.*refused" "$T/e2.log"
check "edge e1 never refused its own client hosts" \
	sh -c "! grep -q 'FM-AUTH' '$T/e1.log' '$T/e1b.log'"
check "the root refused c1's key (it accepts only the edges')" \
	grep -q "FM-AUTH.*refused" "$T/s.log"
for p in $PIDS; do kill -9 "$p" 2>/dev/null; done

if [ $fails -ne 0 ]; then
	echo "--- logs"; tail -n 30 "$T"/*.log
	echo "$fails check(s) failed"
	exit 1
fi
echo "all tree-of-processes checks passed"
