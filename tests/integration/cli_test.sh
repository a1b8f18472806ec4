#!/bin/sh
# SPDX-License-Identifier: MIT
# cli_test.sh FEDMESH SRCDIR: the command-line contract (exit codes, help,
# plugins, --metrics, --threads, script arguments, error reporting).
set -u
. "$(dirname "$0")/lib.sh"
FM=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$FM" version >"$T/v" 2>&1
check "version prints the version" grep -q "^fedmesh [0-9]*\.[0-9]*\.[0-9]* (plugin ABI [0-9]*\.[0-9]*)" "$T/v"
for c in run plugins bench version; do
	"$FM" $c --help >"$T/h" 2>&1
	check "$c --help exits 0 with usage" grep -q "usage: fedmesh $c" "$T/h"
done
"$FM" --help >"$T/h" 2>&1
check "--help lists commands" grep -q "plugins \[--describe NAME\]" "$T/h"
"$FM" frobnicate >"$T/h" 2>&1
check "unknown command exits 2" test $? -eq 2

"$FM" plugins >"$T/p" 2>&1
check "plugins lists fedavg as an aggregator" grep -Eq "^fedavg +aggregator +[0-9]" "$T/p"
"$FM" plugins --describe fedavg >"$T/d" 2>&1
check "describe fedavg shows its parameters section" grep -q "^parameters:" "$T/d"
"$FM" plugins --describe nosuch >"$T/d" 2>&1
check "describe of a missing plugin exits 1" test $? -eq 1

# a script with a mistake: non-zero exit, file and line in the message
cat >"$T/bad.lua" <<'LUA'
local fm = require "fedmesh"
local tr = fm.data.synthetic { devices = 4 }
fm.experiment { train = fm.partition.natural(tr), modell = 1 }
LUA
"$FM" run "$T/bad.lua" >"$T/o" 2>&1
rc=$?
check "failing script exits non-zero" test $rc -ne 0
check "error names the script line and the field" grep -q "bad.lua:3: fm.experiment: unknown field 'modell' (did you mean 'model'?)" "$T/o"
"$FM" run "$T/missing.lua" >"$T/o" 2>&1
check "missing script exits non-zero" test $? -ne 0
"$FM" run --threads zero "$T/bad.lua" >"$T/o" 2>&1
check "bad --threads exits 2" test $? -eq 2

# arguments reach the script as `arg` and `...`
cat >"$T/args.lua" <<'LUA'
local a, b = ...
assert(arg[0]:match("args.lua$") and arg[1] == "x=1" and arg[2] == "two")
assert(a == "x=1" and b == "two")
print("args-ok")
LUA
"$FM" run "$T/args.lua" x=1 two >"$T/o" 2>&1
check "script arguments in arg and ..." grep -q args-ok "$T/o"

# --metrics and --threads with the default experiment
"$FM" run --metrics "$T/m.jsonl" --threads 2 "$SRC/scripts/quickstart.lua" rounds=5 >"$T/o" 2>&1
check "quickstart runs" test $? -eq 0
check "quickstart prints per-round progress" grep -q "^round    5/5  acc" "$T/o"
check "quickstart prints a summary" grep -q "^done: 5 rounds" "$T/o"
check "--metrics writes one line per round" test "$(wc -l <"$T/m.jsonl")" -eq 5
for k in round accuracy loss bytes_sent bytes_received seconds; do
	check "--metrics rows have $k" grep -q "\"$k\":" "$T/m.jsonl"
done

# node selection for deployments: --node, or the rank a cluster launcher sets
for c in node launch; do
	"$FM" $c --help >"$T/h" 2>&1
	check "$c --help exits 0 with usage" grep -q "usage: fedmesh $c" "$T/h"
done
SLURM_PROCID=9 "$FM" node "$SRC/scripts/deploy_local.lua" rounds=1 >"$T/o" 2>&1
check "a rank outside the deployment is refused" grep -q "rank 9 is outside this deployment" "$T/o"
OMPI_COMM_WORLD_RANK=7 "$FM" node "$SRC/scripts/deploy_local.lua" rounds=1 >"$T/o" 2>&1
check "Open MPI's rank is read too" grep -q "rank 7 is outside" "$T/o"
"$FM" node --node nosuch "$SRC/scripts/deploy_local.lua" rounds=1 >"$T/o" 2>&1
check "an unknown node name is refused" grep -q "no node named 'nosuch'" "$T/o"
cat >"$T/nodeploy.lua" <<'LUA'
local fm = require "fedmesh"
local tr = fm.data.synthetic { devices = 4 }
fm.experiment { model = fm.model.logreg { 60, 10 }, train = fm.partition.natural(tr) }:run()
LUA
"$FM" node --node c1 "$T/nodeploy.lua" >"$T/o" 2>&1
check "a script without deploy cannot run as a node" grep -q "has no 'deploy' section" "$T/o"

if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all CLI checks passed"
