#!/bin/sh
# SPDX-License-Identifier: MIT
# fedavg_fmnist.sh [ROUNDS]: the FedAvg run of scripts/fedavg_fmnist.lua
# (MLP, 100 IID clients, 10 per round, E=5, B=32, lr 0.05) timed end to end.
# Prints the per-round JSON lines, then one summary JSON line.
set -eu
cd "$(dirname "$0")/.."
R=${1:-50}
FM=${FEDMESH:-./build/bin/fedmesh}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
$FM run --metrics "$OUT/m.jsonl" scripts/fedavg_fmnist.lua rounds="$R" \
	csv="$OUT/m.csv" jsonl="$OUT/m2.jsonl" >/dev/null
cat "$OUT/m.jsonl"
awk -F'[:,}]' '
{ for (i = 1; i < NF; i++) { k = $i; gsub(/[{"]/, "", k); v[k] = $(i + 1) }
  n++; secs += v["seconds"]; acc = v["accuracy"]
  if (acc + 0 > best + 0) { best = acc; bestr = v["round"] }
  if (!r85 && acc + 0 >= 0.85) r85 = v["round"] }
END { printf "{\"bench\":\"fedavg_fmnist\",\"rounds\":%d,\"final_accuracy\":%s,\"best_accuracy\":%s,\"best_round\":%d,\"first_round_at_85\":%s,\"seconds_per_round\":%.3f,\"total_seconds\":%.1f}\n", n, acc, best, bestr, r85 ? r85 : "null", secs / n, secs }' "$OUT/m.jsonl"
