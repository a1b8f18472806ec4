#!/bin/sh
# SPDX-License-Identifier: MIT
# strategies_fmnist.sh [ROUNDS]: the server strategies of issue 5 on the
# real Fashion-MNIST under label skew: FedAvg, FedProx, SCAFFOLD, FedNova,
# FedAvgM and FedAdam, on Dirichlet(0.5) and on two label shards per client
# (NIID-Bench's setting scaled to this machine; bench/strategies_fmnist.lua
# says how). Prints one JSON object per run (JSON Lines) on stdout.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
FM=${FEDMESH:-$HERE/../build/bin/fedmesh}
ROUNDS=${1:-50}
STRATEGIES=${STRATEGIES:-"fedavg fedprox scaffold fednova fedavgm fedadam"}
PARTITIONS=${PARTITIONS:-"dirichlet shards"}
for p in $PARTITIONS; do
	for s in $STRATEGIES; do
		FEDMESH_LOG=error "$FM" run --threads 2 \
		    "$HERE/strategies_fmnist.lua" strategy="$s" partition="$p" \
		    rounds="$ROUNDS" | tail -n 1
	done
done
