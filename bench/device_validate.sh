#!/usr/bin/env bash
# End-to-end validate of ex6/ex8 on a CUDA machine, as an unprivileged user (so the rlimits sandbox needs no
# uid switch), with both profiles. Usage from the repository root: bash bench/device_validate.sh OUTDIR
set -u
OUT=${1:-/tmp/bench-out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
if [ ! -f /tmp/cifar/cifar-10-batches-py/batches.meta ]; then
  python3 -c "
from cnngrade.data import cifar, synthetic as s
cifar.write_folder('/tmp/cifar', s.generate(50000, s.TRAIN_SEED), s.generate(10000, s.TEST_SEED), list(s.CLASSES))"
fi
chmod -R a+rX /tmp/cifar; W=/tmp/val; mkdir -p $W; chmod 1777 $W
AS_USER="setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=$W USER=nobody PYTHONPATH=$PWD PYTHONUNBUFFERED=1"
for prof in gpu cpu; do
  T0=$(date +%s)
  timeout 270 $AS_USER python3 -m cnngrade validate --exercises ex6,ex8 --profile $prof $([ $prof = gpu ] && echo --data /tmp/cifar) \
      --isolation rlimits --jobs 2 --out $W/$prof > "$OUT/val_$prof.txt" 2>&1
  echo "validate $prof: rc=$? in $(( $(date +%s) - T0 )) s"; head -4 "$OUT/val_$prof.txt"; grep -i "training\|baseline\|sigmoid" "$OUT/val_$prof.txt"
  cp $W/$prof/solutions/report.json "$OUT/report_solutions_$prof.json" 2>/dev/null
  cp $W/$prof/exercises/report.json "$OUT/report_stubs_$prof.json" 2>/dev/null
done
