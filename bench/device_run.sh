#!/usr/bin/env bash
# The GPU session behind bench/README.md: end-to-end gpu-profile grading, calibration, benchmark.
# Run from the repository root on a CUDA machine without cnngrade installed: bash bench/device_run.sh OUTDIR
set -u
OUT=${1:-/tmp/bench-out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=python3
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/machine.txt"
$PY -c "import torch, torchvision, os; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available(), 'cores', os.cpu_count())" | tee -a "$OUT/machine.txt"
which bwrap setpriv | tee -a "$OUT/machine.txt"
# A CIFAR-10-sized folder in the official format (50,000 + 10,000 generated images; no CIFAR-10 download here).
T0=$(date +%s)
$PY -c "
from cnngrade.data import cifar, synthetic as s
cifar.write_folder('/tmp/cifar', s.generate(50000, s.TRAIN_SEED), s.generate(10000, s.TEST_SEED), list(s.CLASSES))"
echo "folder written in $(( $(date +%s) - T0 )) s"
# 1. The gpu profile end to end: reference solutions and stubs of ex6 and ex8.
for iso in bwrap rlimits; do
  T0=$(date +%s)
  timeout 240 $PY -m cnngrade validate --exercises ex6,ex8 --profile gpu --data /tmp/cifar --isolation $iso --jobs 2 --out "$OUT/val_$iso" > "$OUT/val_$iso.txt" 2>&1
  echo "validate gpu $iso: rc=$? in $(( $(date +%s) - T0 )) s"; tail -12 "$OUT/val_$iso.txt"
  [ -f "$OUT/val_$iso/solutions/report.json" ] && break
done
# 2. Calibration of the gpu settings on this folder, 3 seeds, 3 runs at a time.
timeout 150 $PY bench/calibrate.py --profile gpu --data /tmp/cifar --seeds 0-2 --jobs 3 --out "$OUT/calib_gpu.md" 2>&1 | tail -8
# 3. Calibration of the cpu profile, 8 seeds, one thread per run as in a worker.
CUDA_VISIBLE_DEVICES= timeout 150 $PY bench/calibrate.py --profile cpu --seeds 0-7 --jobs 12 --out "$OUT/calib_cpu.md" 2>&1 | tail -8
# 4. The benchmark: grader loop against DataLoader + PIL transforms.
timeout 150 $PY bench/train_bench.py --device cuda --n 50000 --epochs 2 --workers 0,4,8 --out "$OUT/bench_gpu.md" 2>&1 | tail -8
