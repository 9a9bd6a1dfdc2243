"""Which tests run on which Keras backend: the one table, and its pytest hooks.

The suite runs on the backend of `KERAS_BACKEND` (TensorFlow by default;
`KERAS_BACKEND=jax ./scripts/run_tests.sh` for JAX). Two tables, keyed by
`fnmatch` patterns of pytest node ids, say what differs from TensorFlow:

- `TF_ONLY`: tests that need the TensorFlow backend (tf.distribute,
  `keras_opt.distribute`, TFDS pipelines, `tf.function` graphs), or that
  check what Keras computes only on TensorFlow. On any other backend they
  are deselected, not skipped.
- `JAX_FAILURES`: tests that fail on JAX for a known reason in code this
  table does not own; each entry names the cause and the fix. They run on
  JAX as strict expected failures: once fixed they fail with XPASS until
  their entry is removed.

The end of every run prints the backend, the outcome counts, and each
entry with the number of tests it took out, so nothing is left out
silently. `tests/backends_test.py` checks that every pattern still names a
test. `ONE_RUN` lists the tests that start their own processes on fixed
backends: they run in the run of the backend named, and are deselected in
the others'. With `KERAS_OPT_SUITE=core` (CI's JAX run) only the tests of
`CORE`, less `SLOW_CORE`, run.

`tests/conftest.py` imports the hooks. On JAX this module also enables
64-bit floats (`jax_enable_x64`), which the float64 finite-difference tests
need: without it JAX computes float64 inputs in float32. (The cross-backend
and multi-device tests run their JAX processes without it, as users do.)
"""

import fnmatch
import os

import keras
import pytest

_MIRRORED = "tf.distribute.MirroredStrategy"
_FLOAT64_TRIG = (
    "keras.ops computes float64 arccos in float32 on every backend but "
    "TensorFlow (keras.backend.result_type maps float64 to float32), so the "
    "float64 checks of the angular energies (s = 'a0'-'a2') cannot hold"
)

# Pattern -> why the test needs the TensorFlow backend.
TF_ONLY = {
    "tests/distribute_test.py": (
        "keras_opt.distribute: tf.distribute strategies, tf.train "
        "checkpoints, tf.data"
    ),
    "tests/optimizers/distribute_test.py": _MIRRORED,
    "tests/callbacks/distribute_test.py": _MIRRORED,
    "tests/layers/state_test.py::TensorFlowStateTest::*": (
        "tf.train.Checkpoint, BackupAndRestore of keras_opt.distribute, "
        "MirroredStrategy"
    ),
    "tests/callbacks/subspace_episodes_test.py::*::test_replicas_*": (
        _MIRRORED
    ),
    "tests/layers/blocks_test.py::*::test_mirrored_strategy_*": _MIRRORED,
    "tests/optimizers/base_stiefel_test.py::*::test_group_form_step_costs*": (
        "counts the matmuls of a tf.function graph"
    ),
    "tests/layers/base_opt_test.py::*::test_lowdin_layers_opt_out_of_jit": (
        "Löwdin opts out of XLA on TensorFlow only (TF's XLA SVD is a slow "
        "Jacobi iteration; JAX's compiled SVD is LAPACK's)"
    ),
    "tests/readme_test.py::*::test_distributed_training_snippets_run": (
        "the README's keras_opt.distribute section (tf.distribute, tf.data)"
    ),
    "tests/benchmarks_test.py::*::test_orthogonalizers_benchmark_*": (
        "benchmarks/orthogonalizers_benchmark.py times tf.function graphs"
    ),
    "tests/datasets_test.py": "TFDS pipelines (examples/datasets.py)",
    "tests/cifar_example_test.py": "TFDS and tf.image augmentation",
    "tests/energy_test.py::*::test_matches_numpy_rank*_sa*": _FLOAT64_TRIG,
    "tests/energy_test.py::*::test_chunked_equals_unchunked[345]": (
        _FLOAT64_TRIG
    ),
    "tests/energy_test.py::*::test_gradient_matches_finite_differences[345]": (
        _FLOAT64_TRIG
    ),
}

# The suite `KERAS_OPT_SUITE=core` runs (.ci/run's JAX run, so that both
# runs fit CI's 30 minutes on 2 cores): the library's core. Pattern -> what.
CORE = {
    "tests/layers/*": "OPT layers, S-OPT (subspace_test), CLS-OPT",
    "tests/optimizers/*": "StiefelSGD, StiefelAdam",
    "tests/callbacks/*": "monitors, SRIPScheduler, SubspaceEpisodes",
    "tests/orthogonalizers_test.py": "every map",
    "tests/linalg_test.py": "the maps' math, float64 finite differences",
    "tests/stiefel_test.py": "the Stiefel steps",
    "tests/control_test.py": "eager and traced control flow",
    "tests/variable_tags_test.py": "Stiefel tags",
    "tests/energy_test.py": "hyperspherical energy",
    "tests/conversion_test.py": "fold, convert, export",
    "tests/models/*": "the paper's networks",
    "tests/readme_test.py": "the README's snippets",
    "tests/jax_distribution_test.py": "DataParallel, ModelParallel",
    "tests/regularizers/*": "SRIP, MHE, the OR penalty",
    "tests/initializers_test.py": "MinimumEnergy",
    "tests/assignment_test.py": "prototype assignment",
    "tests/recipes_test.py": "recipes, the first-step property",
}
# Core tests that the core suite leaves out for their time, with it.
SLOW_CORE = {
    # The longest of the JAX core run (pytest --durations, 2026-12-06),
    # a long training run; TensorFlow runs it. (Eager Stiefel steps no
    # longer compile at every call on JAX, keras_opt/_control.py, so the
    # eager tests once listed here take 0.3-6 s and run again.)
    "tests/optimizers/stiefel_sgd_test.py::*::test_fit_1000_steps_d576": (
        "18 s on JAX"
    ),
}

# Pattern -> the backend whose run of the suite runs it.
ONE_RUN = {
    "tests/cross_backend_test.py": "tensorflow",
    "tests/backends_test.py": "tensorflow",
    "tests/benchmarks_test.py::*::test_backend_step_benchmark": "tensorflow",
    "tests/jax_distribution_test.py": "jax",
}

# Pattern -> the cause of its failure on JAX, and the fix.
JAX_FAILURES = {
}


_REPORT = pytest.StashKey()


def backend():
    return keras.backend.backend()


def match(nodeid, table):
    """The first `(pattern, reason)` of `table` naming `nodeid`, or None."""
    for pattern, reason in table.items():
        if fnmatch.fnmatchcase(nodeid, pattern) or fnmatch.fnmatchcase(
            nodeid, pattern + "::*"
        ):
            return pattern, reason
    return None


if backend() == "jax" and os.environ.get("JAX_ENABLE_X64", "1") != "0":
    import jax

    jax.config.update("jax_enable_x64", True)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("KERAS_OPT_BACKEND_TABLES") == "off":
        return  # Every test, whatever the backend (tests/backends_test.py).
    excluded, expected_to_fail = {}, {}
    if backend() != "tensorflow":
        for item in items:
            entry = match(item.nodeid, TF_ONLY)
            if entry is not None:
                excluded.setdefault(entry, []).append(item)
                continue
            entry = match(item.nodeid, JAX_FAILURES)
            if entry is not None and backend() == "jax":
                expected_to_fail.setdefault(entry, []).append(item)
                item.add_marker(
                    pytest.mark.xfail(reason=entry[1], strict=True)
                )
    elsewhere = {}
    core_only = os.environ.get("KERAS_OPT_SUITE") == "core"
    for item in items:
        entry = match(item.nodeid, ONE_RUN)
        if entry is not None and entry[1] != backend():
            elsewhere.setdefault(entry, []).append(item)
        elif core_only and (
            match(item.nodeid, CORE) is None
            or match(item.nodeid, SLOW_CORE) is not None
        ):
            path = item.nodeid.split("::")[0]
            entry = match(item.nodeid, SLOW_CORE) or (path, "not core")
            elsewhere.setdefault(entry, []).append(item)
    _take_shard(items, elsewhere)
    left_out = {
        id(item) for groups in (excluded, elsewhere)
        for group in groups.values() for item in group
    }
    config.hook.pytest_deselected(
        items=[item for item in items if id(item) in left_out]
    )
    items[:] = [item for item in items if id(item) not in left_out]
    config.stash[_REPORT] = (
        len(items), excluded, elsewhere, expected_to_fail
    )


def shard():
    """`(index, count)` of `KERAS_OPT_SHARD="i/n"` (1-based), or (1, 1)."""
    value = os.environ.get("KERAS_OPT_SHARD", "1/1")
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        index = count = 0
    if not 1 <= index <= count:
        raise ValueError(
            "KERAS_OPT_SHARD must be 'i/n' with 1 <= i <= n. Received: "
            f"{value!r}"
        )
    return index, count


def _take_shard(items, elsewhere):
    """Leaves to other shards the test classes that are not this shard's.

    The classes (or modules, for functions) in order of collection go to
    the shards in turn, so that the slow files spread over the shards.
    """
    index, count = shard()
    if count == 1:
        return
    groups = {}
    entry = (f"KERAS_OPT_SHARD={index}/{count}", "another shard")
    for item in items:
        group = "::".join(item.nodeid.split("::")[:2])
        if groups.setdefault(group, len(groups)) % count != index - 1:
            elsewhere.setdefault(entry, []).append(item)


@pytest.fixture(autouse=True, scope="module")
def release_compiled_code():
    """On JAX, frees a test module's compiled programs when it ends.

    One JAX run compiles thousands of XLA programs in one process; kept,
    their code mappings approach the kernel's limit on memory maps
    (`vm.max_map_count`, 65,530) and XLA's compiler segfaults (CI's JAX
    run did, in `backend_compile_and_load`, each time at the same test).
    """
    yield
    keep = os.environ.get("KERAS_OPT_KEEP_JAX_CACHES") == "1"
    if backend() == "jax" and not keep:
        import jax

        jax.clear_caches()


def _memory_maps():
    try:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _REPORT not in config.stash:
        return
    selected, excluded, elsewhere, expected_to_fail = config.stash[_REPORT]
    stats = terminalreporter.stats
    outcomes = ", ".join(
        f"{len(stats.get(key, []))} {key}"
        for key in ("passed", "failed", "error", "skipped", "xfailed")
    )
    write = terminalreporter.write_line
    terminalreporter.section(f"backend: {backend()}")
    write(
        f"backend {backend()}: {selected} tests ran ({outcomes}); "
        f"{sum(map(len, excluded.values()))} excluded as TensorFlow-only; "
        f"{sum(map(len, elsewhere.values()))} left to another run; "
        f"{sum(map(len, expected_to_fail.values()))} known JAX failures "
        "run as strict xfail (tests/backends.py)"
    )
    if _memory_maps() is not None:
        write(f"memory maps of this process at the end: {_memory_maps()}")
    for title, groups in (
        ("TF-only", excluded),
        ("not here", elsewhere),
        ("JAX xfail", expected_to_fail),
    ):
        for (pattern, reason), group in groups.items():
            if reason in ("tensorflow", "jax"):
                reason = f"runs in the {reason} run"
            elif reason == "not core":
                reason = "outside KERAS_OPT_SUITE=core"
            elif reason == "another shard":
                reason = "the other shards' tests"
            write(f"  {title} {len(group):3d}  {pattern}: {reason}")
