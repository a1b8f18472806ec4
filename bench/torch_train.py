#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""torch_train.py: the PyTorch CPU baseline for `fedmesh bench train`.

Same model (MLP 784-200-200-10, logreg 784-10, or the CNN of McMahan et al.
2017: conv 5x5 32 'same', ReLU, max-pool 2, conv 5x5 64, ReLU, max-pool 2,
dense 512, ReLU, dense 10; PyTorch's default init),
same data (Fashion-MNIST from Debian's dataset-fashion-mnist, pixels / 255),
same optimizer (plain SGD, lr 0.05), same batch and a fresh random order
each epoch. Prints one JSON line with samples_per_s, like fedmesh.

usage: torch_train.py --model mlp|logreg|cnn --batch 32 --threads 2 [--seconds 5]
Run it under different OMP_NUM_THREADS / OPENBLAS_NUM_THREADS settings:
bench/train_vs_torch.sh does, and reports PyTorch's best.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch

DIR = os.environ.get("FEDMESH_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")


def load(kind):
    with gzip.open(f"{DIR}/{kind}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(f"{DIR}/{kind}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


def model(kind):
    if kind == "logreg":
        return torch.nn.Linear(784, 10)
    if kind == "cnn":  # fedmesh's fm.model.cnn(): the same layers and layout
        return torch.nn.Sequential(
            torch.nn.Unflatten(1, (1, 28, 28)),
            torch.nn.Conv2d(1, 32, 5, padding=2), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 5, padding=2), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(3136, 512), torch.nn.ReLU(),
            torch.nn.Linear(512, 10))
    return torch.nn.Sequential(
        torch.nn.Linear(784, 200), torch.nn.ReLU(),
        torch.nn.Linear(200, 200), torch.nn.ReLU(),
        torch.nn.Linear(200, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mlp", choices=["mlp", "logreg", "cnn"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--lr", type=float, default=0.05)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    x, y = load("train")
    net = model(a.model)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr)
    lossf = torch.nn.CrossEntropyLoss()

    def steps(limit_s):
        n, t0 = 0, time.perf_counter()
        while True:
            perm = torch.randperm(x.shape[0])
            for i in range(0, x.shape[0], a.batch):
                idx = perm[i:i + a.batch]
                opt.zero_grad()
                loss = lossf(net(x[idx]), y[idx])
                loss.backward()
                opt.step()
                n += len(idx)
                if n % (a.batch * 64) == 0 and time.perf_counter() - t0 >= limit_s:
                    return n, time.perf_counter() - t0, float(loss)

    steps(0.5)  # warm up
    n, el, last = steps(a.seconds)
    print(json.dumps({
        "bench": "train", "impl": "pytorch", "torch": torch.__version__,
        "model": a.model, "batch": a.batch, "threads": a.threads,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "samples": n, "seconds": round(el, 3),
        "samples_per_s": round(n / el, 1), "last_loss": round(last, 4)}))


if __name__ == "__main__":
    main()
