"""TensorFlow and JAX train OPT layers to the same weights.

`tests/_workers/backend_worker.py train` runs once per backend, each in its
own process, from the same numpy data and starting weights: every
orthogonalizer with SGD, and OGD with StiefelSGD and StiefelAdam, on an
OPTConv2D + OPTDense model, for a few steps. The test starts its own
processes, so it runs in one backend's run of the suite only
(tests/backends.py).
"""

import os
import subprocess
import sys

import numpy as np
from absl.testing import absltest

from tests import test_case
from tests._workers import backend_worker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "_workers", "backend_worker.py")
BACKENDS = ("tensorflow", "jax")


def run_workers(mode, out_dir, backends=BACKENDS, extra_env=None, timeout=600):
    """Runs the worker in `mode` once per backend, at the same time.

    Returns `{backend: arrays}`; raises with the worker's output if one fails.
    """
    processes = {}
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        env.pop("JAX_ENABLE_X64", None)  # float32, as users run it.
        env.update(extra_env or {})
        out = os.path.join(out_dir, f"{backend}.npz")
        processes[backend] = (
            out,
            subprocess.Popen(
                [sys.executable, WORKER, mode, out],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
    results = {}
    for backend, (out, process) in processes.items():
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if process.returncode != 0:
            raise AssertionError(
                f"{mode} worker on {backend} exited with "
                f"{process.returncode}:\n{output[-4000:]}"
            )
        results[backend] = dict(np.load(out))
    return results


class CrossBackendTest(test_case.TestCase):
    def test_every_map_and_stiefel_optimizer_trains_alike(self):
        results = run_workers("train", self.get_temp_dir())
        tf_arrays, jax_arrays = results["tensorflow"], results["jax"]
        self.assertEqual(sorted(tf_arrays), sorted(jax_arrays))
        for case in backend_worker.cases():
            finals = [k for k in tf_arrays if k.startswith(f"{case}/final/")]
            self.assertNotEmpty(finals, case)
            moved = 0.0
            for key in finals:
                initial = key.replace("/final/", "/initial/")
                # The same start, from numpy, on both backends.
                self.assertAllEqual(jax_arrays[initial], tf_arrays[initial])
                self.assertAllClose(
                    jax_arrays[key], tf_arrays[key], atol=1e-4, rtol=0,
                    msg=key,
                )
                moved = max(
                    moved, np.max(np.abs(tf_arrays[key] - tf_arrays[initial]))
                )
            self.assertGreater(moved, 1e-2, f"{case} did not train")


if __name__ == "__main__":
    absltest.main()
