#!/usr/bin/env bash
# One short GPU session, sized for a lent machine (15 minutes of device time, start-up included).
# Usage: bash benchmarks/gpu_check.sh OUTDIR [speed|baseline] [DATASET_ZIP]
#   speed (default, about 7 minutes of caps): the torch.compile path (CUDA graphs, fused Adam)
#         against the published reference cases and the eager path; then styleformer-cifar10 at
#         batch 32: the published code against ours at the published settings (float32), then
#         ours in reduced precision and ours compiled (img/s, peak memory and model-FLOPs
#         utilisation). Needs the published code in ./published (a `git archive` of
#         github:Jeeseung-Park/Styleformer, carried along, never committed).
#   baseline (about 9 minutes): plugin correctness, op and network speed, eager training speed,
#         and a minute of real training on DATASET_ZIP whose snapshot comes back in OUTDIR.
# Each step has its own time cap; everything printed is also in OUTDIR/gpu_check.log.
set -u
out=${1:-gpu-out}; section=${2:-speed}; data=${3:-datasets/fashion-mnist-32x32.zip}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
step() { local cap=$1; shift; echo "=== [$cap s] $*"; timeout -s TERM "$cap" "$@" 2>&1 | tee -a "$out/gpu_check.log" | grep -v '^\s*$' | tail -n 40; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu_check.log"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu_check.log"
case "$section" in
speed)
    step 120 python3 -m pytest -q -p no:cacheprovider -rs tests/test_compile.py -m "not slow" -k cuda
    step 90  python3 benchmarks/bench_published.py --compare-published=published --device=cuda --configs=cifar10 --batch=32 --steps=8
    step 50  python3 benchmarks/bench_training.py --device cuda --configs styleformer-cifar10 --steps 8 --compile off --precision full
    step 50  python3 benchmarks/bench_training.py --device cuda --configs styleformer-cifar10 --steps 8 --compile off --precision reduced
    step 120 python3 benchmarks/bench_training.py --device cuda --configs styleformer-cifar10 --steps 8 --compile on --precision full
    ;;
baseline)
    step 120 python3 -m pytest -q -p no:cacheprovider tests/test_ops.py -k "plugin or cuda"
    step 40  python3 benchmarks/bench_ops.py
    step 100 python3 benchmarks/bench_networks.py --device cuda --configs cifar10-32 --iters 5 --warmup 2
    step 50  python3 benchmarks/bench_training.py --device cuda --configs styleformer-cifar10 --steps 8 --compile off
    # Real training until the time cap; SIGTERM makes train.py write a final snapshot.
    runs=$(mktemp -d)
    step 90 python3 train.py --outdir="$runs" --data="$data" --cfg=tiny --kimg=1000 --snap=1000 --metrics=none --tick=10
    run=$(ls -d "$runs"/*/ | head -n 1)
    cp "$run"/log.txt "$out"/train_log.txt
    cp "$(ls "$run"/network-snapshot-*.pkl | tail -n 1)" "$out"/
    cp "$(ls "$run"/fakes*.png | tail -n 1)" "$out"/
    ;;
*)
    echo "Unknown section '$section': use speed or baseline." >&2
    exit 2
    ;;
esac
