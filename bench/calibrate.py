"""Calibrate the training thresholds: `cnngrade calibrate` (cnngrade/training/calibrate.py) does it; this script forwards to it.

    python bench/calibrate.py --profile cpu --seeds 0-7 [--jobs 8] [--threads 1] [--data DIR] [--out FILE]

Kept so that the commands cited in bench/README.md and in the grader.yaml comments still run. The options are
those of `cnngrade calibrate --help`: ``--exercises ex6`` replaces the old ``--checks``; ``--out`` now writes the
calibration file that `cnngrade grade --calibration FILE` reads (the Markdown table is printed); each run gets the
CPU cores divided by ``--jobs`` as torch threads unless ``--threads`` is given (the cpu figures in bench/README.md
were measured with one thread per run, as in a grading worker: ``--threads 1``).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # this checkout's cnngrade, installed or not

from cnngrade.cli import main

if __name__ == "__main__":
    sys.exit(main(["calibrate", *sys.argv[1:]]))
