"""The grader toolkit: every helper the graders share, importable as ``from cnngrade.graderkit import ...``.

Graders import cnngrade only from here (tests/test_graderkit.py checks it). Each name is written once in
the module named below and loaded when first asked for, so this package pulls in no heavy module and no
import cycle (``equivalence`` and ``checks`` themselves read worker data through ``graderkit.values``).
Every helper follows the sound-verdict rule: worker data is read strictly (``values``), and malformed data
fails the test as the student's (``BadValue`` is an AssertionError), never as a grader error.
"""
from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it; a module itself is listed as ``name: module``.
_WHERE = {
    # strict readers of worker data
    "values": "cnngrade.graderkit.values",
    **{n: "cnngrade.graderkit.values" for n in (
        "BadValue", "answers", "integer", "mapping", "number", "numbers_list", "sequence", "shape", "tensor",
        "text")},
    # figures rendered in the worker, judged here
    "figures": "cnngrade.graderkit.figures",
    **{n: "cnngrade.graderkit.figures" for n in (
        "BadFigure", "curves", "image_panels", "is_colour_scale", "is_grey", "labelled", "render", "resembles")},
    # receptive fields measured from outputs
    "rf": "cnngrade.graderkit.rf",
    # grader-drawn inputs, handles
    **{n: "cnngrade.graderkit.inputs" for n in ("handle", "images", "rng")},
    # messages a student can act on
    **{n: "cnngrade.graderkit.checks" for n in ("call_text", "expect_close", "expect_int", "expect_raises", "is_integral",
                                      "show")},
    "Handle": "cnngrade.sandbox.handles",
    "StudentError": "cnngrade.errors",
    # architectures proven with grader-drawn weights
    **{n: "cnngrade.graderkit.equivalence" for n in (
        "assert_equivalent", "assert_same_outputs", "assert_train_mode_deterministic", "assert_train_mode_dropout",
        "unobservable_tensors")},
    **{n: "cnngrade.graderkit.weights" for n in (
        "draw_reference_weights", "load_grader_weights", "load_student_weights")},
    # trusted references and measurements
    "reference": "cnngrade.training.networks",
    "measure": "cnngrade.graderkit.measure",
    **{n: "cnngrade.graderkit.measure" for n in ("Layer", "receptive_field")},
    **{n: "cnngrade.worker.builders" for n in ("build_nested", "build_sequential", "build_shuffled")},
    "leaf_output_shapes": "cnngrade.worker.run_order",
    # training checks run on the trusted side
    "training_settings": "cnngrade.training.profiles",
    **{n: "cnngrade.training.run_check" for n in (
        "RunResult", "recipe_text", "record", "student_network", "train_and_score", "worker_threads")},
}
_MODULES = {"values", "figures", "rf", "reference", "measure"}
__all__ = sorted(_WHERE)  # noqa: PLE0605 - the names above, in order


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"cnngrade.graderkit has no {name!r}; it exports {', '.join(__all__)}")
    module = importlib.import_module(where)
    value = module if name in _MODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
