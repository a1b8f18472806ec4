#!/bin/sh
# SPDX-License-Identifier: MIT
# robust_fmnist.sh [ROUNDS]: the robustness table of issue 5 on the real
# Fashion-MNIST: every attack x {FedAvg, Krum, Multi-Krum, Bulyan, median,
# trimmed mean, geometric median, centered clipping, FLTrust}, plus the
# no-attack row; 100 clients, Dirichlet(0.5), 20% adversarial, 20 clients
# per round. Prints one JSON object per cell (JSON Lines) on stdout.
# PER_ROUND=1: every round samples exactly 4 adversaries and 16 honest
# clients (adversaries = { fraction = 0.2, per_round = true }) instead of 20
# clients uniformly from a population with 20 adversaries.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
FM=${FEDMESH:-$HERE/../build/bin/fedmesh}
ROUNDS=${1:-30}
ATTACKS=${ATTACKS:-"none label_flip sign_flip gaussian scaling alie ipm backdoor"}
PER_ROUND=${PER_ROUND:-0}
DEFENCES=${DEFENCES:-"none krum multikrum bulyan median trimmed_mean geomedian centered_clipping fltrust"}
for a in $ATTACKS; do
	for d in $DEFENCES; do
		FEDMESH_LOG=error "$FM" run --threads 2 "$HERE/robust_fmnist.lua" \
		    attack="$a" defence="$d" rounds="$ROUNDS" \
		    per_round="$PER_ROUND" | tail -n 1
	done
done
