#!/bin/sh
# SPDX-License-Identifier: MIT
# train_vs_torch.sh [SECONDS]: local training throughput of fedmesh against
# PyTorch's CPU build (Debian python3-torch) on this machine, side by side:
# MLP 784-200-200-10, batch 32 and 128, 1 and 2 threads. PyTorch is tried
# under several OMP_NUM_THREADS / OPENBLAS_NUM_THREADS settings, and with
# the OPENBLAS_CORETYPE kernels fedmesh may select (Debian's torch uses the
# same OpenBLAS), and its best figure is kept. Prints JSON lines, then one summary line per setting with
# the ratio fedmesh / best PyTorch.
set -eu
cd "$(dirname "$0")/.."
S=${1:-3}
FM=${FEDMESH:-./build/bin/fedmesh}
PY=/usr/bin/python3
if ! $PY -c "import torch" 2>/dev/null; then
	echo "installing python3-torch for the baseline" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy >/dev/null
fi
best_torch() { # best_torch BATCH THREADS
	best=0
	for ct in unset SkylakeX Haswell; do
		for omp in 1 2 unset; do
			for ob in 1 unset; do
				env_args=""
				[ "$ct" != unset ] && env_args="$env_args OPENBLAS_CORETYPE=$ct"
				[ "$omp" != unset ] && env_args="$env_args OMP_NUM_THREADS=$omp"
				[ "$ob" != unset ] && env_args="$env_args OPENBLAS_NUM_THREADS=$ob"
				line=$(env $env_args $PY bench/torch_train.py --model mlp \
					--batch "$1" --threads "$2" --seconds "$S" 2>/dev/null) || continue
				echo "{\"env\":\"$env_args\",\"pytorch\":$line}" >&2
				v=$(echo "$line" | sed 's/.*"samples_per_s": \([0-9.]*\).*/\1/')
				best=$(echo "$v $best" | awk '{print ($1 > $2) ? $1 : $2}')
			done
		done
	done
	echo "$best"
}
for b in 32 128; do
	for t in 1 2; do
		line=$($FM bench train --model mlp --batch $b --threads $t --seconds "$S")
		echo "$line" >&2
		fm=$(echo "$line" | sed 's/.*"samples_per_s":\([0-9.]*\).*/\1/')
		tb=$(best_torch $b $t)
		echo "{\"bench\":\"train_vs_torch\",\"model\":\"mlp\",\"batch\":$b,\"threads\":$t,\"fedmesh_samples_per_s\":$fm,\"pytorch_best_samples_per_s\":$tb,\"ratio\":$(echo "$fm $tb" | awk '{printf "%.2f", $1 / $2}')}"
	done
done
