"""Keras's distribution API on JAX: 2 host devices against one.

`tests/_workers/backend_worker.py` runs in a JAX process with
`XLA_FLAGS=--xla_force_host_platform_device_count=2` (the flag must be set
before JAX starts, hence the process). `DataParallel` splits each batch
over the devices and replicates every variable; `ModelParallel` splits the
frozen basis V of a wide OPTDense (and its bias and gains) by columns over
the devices, so each device computes its columns of W = R·V.
"""

import re

import numpy as np
from absl.testing import absltest

from tests import cross_backend_test
from tests import test_case

TWO_HOST_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def run_jax_worker(mode, out_dir):
    return cross_backend_test.run_workers(
        mode, out_dir, backends=("jax",), extra_env=TWO_HOST_DEVICES
    )["jax"]


def assert_trained_alike(test, arrays, atol):
    """`single/...` equals `parallel/...` within `atol`; P moved."""
    singles = [k for k in arrays if re.search(r"(^|/)single/", k)]
    test.assertNotEmpty(singles)
    for key in singles:
        parallel = arrays[re.sub(r"(^|/)single/", r"\1parallel/", key)]
        test.assertAllClose(parallel, arrays[key], atol=atol, rtol=0, msg=key)


class JaxDistributionTest(test_case.TestCase):
    def test_data_parallel_equals_one_device(self):
        arrays = run_jax_worker("data_parallel", self.get_temp_dir())
        self.assertEqual(int(arrays["num_devices"]), 2)
        assert_trained_alike(self, arrays, atol=1e-5)
        spreads = {k: float(v) for k, v in arrays.items() if "/spread/" in k}
        stiefel = [k for k in spreads if "Stiefel" in k and "rotation" in k]
        self.assertNotEmpty(stiefel)
        for key, spread in spreads.items():
            # Every replica holds the same bits, the Stiefel step included.
            self.assertEqual(spread, 0.0, key)

    def test_model_parallel_splits_the_basis_of_a_wide_layer(self):
        arrays = run_jax_worker("model_parallel", self.get_temp_dir())
        self.assertEqual(int(arrays["basis_sharding"]), 2)
        assert_trained_alike(self, arrays, atol=1e-5)
        (key,) = [k for k in arrays if k.startswith("single/") and
                  k.endswith("/rotation_parameter")]
        moved = arrays[key] - arrays[key.replace("single/", "initial/")]
        self.assertGreater(np.max(np.abs(moved)), 1e-3)


if __name__ == "__main__":
    absltest.main()
