#!/bin/sh
# SPDX-License-Identifier: MIT
# dp_deploy_test.sh FEDMESH SRCDIR: differential privacy deployed as real
# processes (scripts/dp_fedavg_fmnist.lua on a server and 4 client hosts,
# loopback TCP with CURVE): fedmesh launch gives the simulation's
# accuracy, epsilon, clip norm and Poisson-sampled counts for
#   1. dp_adaptive (its clip travels to the clients, their clipped bits
#      back to the server, as plugin messages);
#   2. dp_local (every client noises its own update);
#   3. dp_fixed with secure_noise: no two runs add the same noise, and
#      the accounting does not change.
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
S=$SRC/scripts/dp_fedavg_fmnist.lua
T=$(mktemp -d)
PORT=$(free_ports 26000 10)
trap 'rm -rf "$T"' EXIT INT TERM
cols() { sed 's/.*"'"$2"'":\([^,}]*\).*/\1/' "$1"; }
same() { # same KEY: simulation and deployment agree on KEY
	cols "$T/sim.jsonl" "$1" >"$T/a"
	cols "$T/dep.jsonl" "$1" >"$T/b"
	cmp -s "$T/a" "$T/b"
}
n=0
for m in dp_adaptive dp_local; do
	n=$((n + 1))
	A="rounds=3 clients=100 per_round=10 mechanism=$m port=$((PORT + n)) keys=$T/keys"
	"$FM" run --metrics "$T/sim.jsonl" "$S" $A >"$T/sim.log" 2>&1
	check "$m: the simulation runs 3 rounds" test "$(wc -l <"$T/sim.jsonl")" -eq 3
	"$FM" launch --metrics "$T/dep.jsonl" "$S" $A >"$T/dep.log" 2>&1
	check "$m: the deployment runs 3 rounds" test "$(wc -l <"$T/dep.jsonl")" -eq 3
	for k in accuracy epsilon delta dp_clip dp_noise_std updates; do
		check "$m: deployed $k equals simulated" same $k
	done
done
A="rounds=2 clients=100 per_round=10 mechanism=dp_fixed secure_noise=true port=$((PORT + 5)) keys=$T/keys"
"$FM" run --metrics "$T/sim.jsonl" "$S" $A >"$T/sim.log" 2>&1
"$FM" launch --metrics "$T/dep.jsonl" "$S" $A >"$T/dep.log" 2>&1
check "secure noise: both run 2 rounds" test "$(cat "$T/sim.jsonl" "$T/dep.jsonl" | wc -l)" -eq 4
check "secure noise: the same epsilon" same epsilon
cols "$T/sim.jsonl" loss >"$T/a"
cols "$T/dep.jsonl" loss >"$T/b"
check "secure noise: other noise, another model" sh -c "! cmp -s '$T/a' '$T/b'"
if [ $fails -ne 0 ]; then
	tail -n 20 "$T/sim.log" "$T/dep.log"
	echo "$fails check(s) failed"
	exit 1
fi
echo "all DP deployment checks passed"
