"""Which tests run on which Keras backend: the one table, and its pytest hooks.

The suite runs on the backend of `KERAS_BACKEND` (TensorFlow by default;
`KERAS_BACKEND=jax ./scripts/run_tests.sh` for JAX). `TF_ONLY` lists, with
the reason, every test that needs the TensorFlow backend: tf.distribute,
`keras_opt.distribute`, SavedModel serving, TFDS pipelines, TensorBoard
event files read through TensorFlow, `tf.function` graphs. On any other
backend those tests are deselected (not skipped) and the end of the run
prints how many tests ran and how many the table excluded, per entry, so
that nothing is left out silently. An entry is an `fnmatch` pattern of a
pytest node id; `tests/backends_test.py` checks that each one still names a
test.

`tests/conftest.py` imports the hooks. On JAX it also enables 64-bit
floats (`jax_enable_x64`), which the float64 finite-difference tests need:
without it JAX computes float64 inputs in float32.
"""

import fnmatch
import os

import keras
import pytest

_FLOAT64_TRIG = "float64 arccos of the angular energies (s = 'a0'-'a2')"

# Pattern -> why the test needs the TensorFlow backend.
TF_ONLY = {
    "tests/distribute_test.py": (
        "keras_opt.distribute: tf.distribute strategies, tf.train "
        "checkpoints, tf.data"
    ),
    "tests/optimizers/distribute_test.py": "tf.distribute.MirroredStrategy",
    "tests/callbacks/distribute_test.py": "tf.distribute.MirroredStrategy",
    "tests/layers/base_opt_test.py::*::test_predict_cache_under_mirrored*": (
        "tf.distribute.MirroredStrategy"
    ),
    "tests/callbacks/subspace_episodes_test.py::*::test_replicas_*": (
        "tf.distribute.MirroredStrategy"
    ),
    "tests/optimizers/base_stiefel_test.py::*::test_group_form_step_costs*": (
        "counts the matmuls of a tf.function graph"
    ),
    "tests/readme_test.py::*::test_distributed_training_snippets_run": (
        "the README's keras_opt.distribute section (tf.distribute, tf.data)"
    ),
    "tests/datasets_test.py": "TFDS pipelines (examples/datasets.py)",
    # keras.ops computes float64 trigonometry (arccos, arcsin) in float32 on
    # every backend but TensorFlow (keras.backend.result_type), so the
    # float64 checks of the angular energies cannot hold on JAX.
    "tests/energy_test.py::*::test_matches_numpy_rank*_sa*": _FLOAT64_TRIG,
    "tests/energy_test.py::*::test_chunked_equals_unchunked[345]": (
        _FLOAT64_TRIG
    ),
    "tests/energy_test.py::*::test_gradient_matches_finite_differences[345]": (
        _FLOAT64_TRIG
    ),
    "tests/cifar_example_test.py": "TFDS and tf.image augmentation",
}


_REPORT = pytest.StashKey()


def backend():
    return keras.backend.backend()


def tf_only_reason(nodeid):
    """The reason `nodeid` needs TensorFlow, or None if it runs anywhere."""
    for pattern, reason in TF_ONLY.items():
        if fnmatch.fnmatchcase(nodeid, pattern) or fnmatch.fnmatchcase(
            nodeid, pattern + "::*"
        ):
            return pattern, reason
    return None


if backend() == "jax" and os.environ.get("JAX_ENABLE_X64", "1") != "0":
    import jax

    jax.config.update("jax_enable_x64", True)


def pytest_collection_modifyitems(config, items):
    excluded = {}
    if backend() != "tensorflow":
        kept = []
        for item in items:
            match = tf_only_reason(item.nodeid)
            if match is None:
                kept.append(item)
            else:
                excluded.setdefault(match, []).append(item)
        if excluded:
            config.hook.pytest_deselected(
                items=[item for group in excluded.values() for item in group]
            )
            items[:] = kept
    config.stash[_REPORT] = (len(items), excluded)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _REPORT not in config.stash:
        return
    selected, excluded = config.stash[_REPORT]
    count = sum(len(group) for group in excluded.values())
    outcomes = ", ".join(
        f"{len(terminalreporter.stats.get(key, []))} {key}"
        for key in ("passed", "failed", "error", "skipped")
    )
    write = terminalreporter.write_line
    terminalreporter.section(f"backend: {backend()}")
    write(
        f"backend {backend()}: {selected} tests selected ({outcomes}), "
        f"{count} excluded as TensorFlow-only (tests/backends.py)"
    )
    for (pattern, reason), group in excluded.items():
        write(f"  excluded {len(group):3d}  {pattern}: {reason}")
