"""The cpu profile's data set: ten classes of coloured shapes on noisy backgrounds, generated deterministically.

A small CNN learns it to high accuracy in a few hundred optimizer steps on two CPU cores,
while a network with sigmoid activations learns it clearly worse in the same budget, so
it can stand in for CIFAR-10 where no GPU is available. Generation uses numpy's PCG64
generator, whose streams are stable across platforms and numpy versions, so the same
seed gives the same bytes everywhere. The training set comes from a public seed; the graders'
held-out set is drawn from the same class structure with a seed drawn secretly per grading run
(cnngrade/training/run_check.py), so no constant in this public file names the images a student is scored on.
"""
from __future__ import annotations

import numpy as np

SIZE = 32
CLASSES = ("square", "frame", "disc", "ring", "hbar", "vbar", "plus", "cross", "triangle", "stripes")
HUE_FAMILIES = 5     # two shapes share each hue family, so colour alone cannot tell every class apart
TRAIN_SEED = 20240611
TEST_SEED = 20240612   # a public example test set (benchmarks, demos); graders never score on it


def _masks(dx: np.ndarray, dy: np.ndarray, r: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Boolean masks (10, N, 32, 32): every class's shape drawn at every image's position and size."""
    ax, ay = np.abs(dx), np.abs(dy)
    cheb, d2 = np.maximum(ax, ay), dx * dx + dy * dy
    return np.stack([
        cheb <= r,
        (cheb <= r) & (cheb > r - 2.5),
        d2 <= r * r,
        (d2 <= r * r) & (d2 > (r - 2.5) ** 2),
        (ay <= 2) & (ax <= r + 3),
        (ax <= 2) & (ay <= r + 3),
        ((ax <= 1.5) & (ay <= r)) | ((ay <= 1.5) & (ax <= r)),
        (np.abs(ax - ay) <= 1.2) & (cheb <= r),
        (dy <= r) & (dy >= -r) & (ax <= (dy + r) / 2),
        (cheb <= r) & (((xs + ys) // 2) % 2 == 0),
    ])


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N,) hue/saturation/value in [0, 1] to (N, 3) RGB in [0, 1]."""
    k = (np.stack([5.0, 3.0, 1.0])[None, :] + h[:, None] * 6.0) % 6.0
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def generate(n: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images as uint8 (n, size, size, 3) (CIFAR-10's layout) and their int64 labels, balanced over classes.

    A ``size`` below 32 (one that divides it) averages blocks of the 32x32 drawing: the same shapes at a lower
    resolution, for a quarter of the convolutions' work at 16.
    """
    if size != SIZE:
        if size <= 0 or SIZE % size:
            raise ValueError(f"size must divide {SIZE}, got {size}")
        images, labels = generate(n, seed)
        f = SIZE // size
        blocks = images.reshape(n, size, f, size, f, 3).astype(np.float32).mean(axis=(2, 4))
        return (blocks + 0.5).astype(np.uint8), labels
    rng = np.random.Generator(np.random.PCG64(seed))
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    cx = rng.uniform(9.0, 23.0, n).astype(np.float32)[:, None, None]
    cy = rng.uniform(9.0, 23.0, n).astype(np.float32)[:, None, None]
    r = rng.uniform(5.0, 9.0, n).astype(np.float32)[:, None, None]
    masks = _masks(xs - cx, ys - cy, r, xs, ys)
    mask = masks[labels, np.arange(n)]                                  # (n, 32, 32)
    hue = (labels % HUE_FAMILIES) / HUE_FAMILIES + rng.uniform(-0.06, 0.06, n)
    fg = _hsv_to_rgb(hue % 1.0, rng.uniform(0.6, 1.0, n), rng.uniform(0.7, 1.0, n))
    bg = rng.uniform(0.0, 0.45, (n, 3))
    img = np.where(mask[..., None], fg[:, None, None, :], bg[:, None, None, :])
    img = img + rng.normal(0.0, 0.08, img.shape)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), labels


def train_and_test(n_train: int, n_test: int,
                   test_seed: int = TEST_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training and held-out sets; each from its own seed, so the test set does not depend on n_train.

    Graders pass a secret ``test_seed``; the default is the public example set.
    """
    x, y = generate(n_train, TRAIN_SEED)
    tx, ty = generate(n_test, test_seed)
    return x, y, tx, ty
