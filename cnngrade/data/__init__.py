"""Data sets for the training checks: CIFAR-10 from a local folder (gpu profile) and a generated set (cpu profile)."""
