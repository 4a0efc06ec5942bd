#!/usr/bin/env bash
# One short GPU session: plugin correctness, op/network/training speed, and a few minutes of
# real training on Fashion-MNIST whose snapshot is brought back for an FID on the CPU.
# Usage: bash benchmarks/gpu_check.sh OUTDIR DATASET_ZIP   (each step has its own time cap)
set -u
out=${1:-gpu-out}; data=${2:-datasets/fashion-mnist-32x32.zip}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
step() { local cap=$1; shift; echo "=== [$cap s] $*"; timeout -s TERM "$cap" "$@" 2>&1 | tee -a "$out/gpu_check.log" | grep -v '^\s*$' | tail -n 40; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu_check.log"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu_check.log"
step 120 python3 -m pytest -q -p no:cacheprovider tests/test_ops.py -k "plugin or cuda"
step 40  python3 benchmarks/bench_ops.py
step 100 python3 benchmarks/bench_networks.py --device cuda --configs cifar10-32 --iters 5 --warmup 2
step 50  python3 benchmarks/bench_training.py --device cuda --configs styleformer-cifar10 --steps 8 --compile off
# torch.compile: agreement with the reference cases (tests/test_compile.py builds on the CPU, so this checks the
# inductor install there), then the CUDA speed path (CUDA graphs via reduce-overhead, fused Adam) in the benchmark.
step 150 python3 -m pytest -q -p no:cacheprovider tests/test_compile.py -m "not slow"
step 180 python3 benchmarks/bench_training.py --device cuda --configs styleformer-cifar10 --steps 8 --compile on
# Real training until the time cap; SIGTERM makes train.py write a final snapshot.
runs=$(mktemp -d)
step 90 python3 train.py --outdir="$runs" --data="$data" --cfg=tiny --kimg=1000 --snap=1000 --metrics=none --tick=10
run=$(ls -d "$runs"/*/ | head -n 1)
cp "$run"/log.txt "$out"/train_log.txt
cp "$(ls "$run"/network-snapshot-*.pkl | tail -n 1)" "$out"/
cp "$(ls "$run"/fakes*.png | tail -n 1)" "$out"/
