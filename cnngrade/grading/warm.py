"""What every student's grading process would import on its own, imported once by the fork server instead.

Imported (only) as part of ``backends.PRELOAD``. Each item was found by listing the modules a grading process of the
six CPU exercises imported after the fork server's preload (about 600, 0.6 s of CPU per student): pytest's built-in
plugins, which ``pytest.main`` loads; the symbolic-shape machinery (and sympy) that the first shape check of a
convolution on meta tensors imports (ex1's grader); PIL's image plugins; the grader toolkit's figure, SVG and
receptive-field modules; and hypothesis's own registered Random.
"""
from __future__ import annotations

import contextlib
import importlib

import _pytest.config

MODULES = ("torch.fx.experimental.symbolic_shapes", "PIL.Image", "defusedxml.ElementTree",
           "cnngrade.graderkit.figures", "cnngrade.graderkit.svg", "cnngrade.graderkit.rf",
           "cnngrade.graderkit.inputs", "cnngrade.graderkit.measure", "cnngrade.grading.score", "pdb")


def warm() -> None:
    for name in (*MODULES, *(f"_pytest.{p}" for p in _pytest.config.default_plugins)):
        with contextlib.suppress(ImportError):   # a plugin a later pytest drops is simply not preloaded
            importlib.import_module(name)
    import PIL.Image

    PIL.Image.init()   # the format plugins, which the first image a test opens or saves would register
    # Hypothesis registers its own Random at the first example a process runs, with a full gc.collect() over
    # torch's heap (0.2 s); registered here, every grading process forked from this one inherits it.
    from hypothesis.internal.entropy import deterministic_PRNG

    with deterministic_PRNG():
        pass


warm()
