"""Tests of tests/conftest.py: the 2-CPU setup cannot fail silently in CI."""

import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

from tests import test_case

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TensorFlow runs an op before the conftest, as a plugin or an early import
# could: the logical CPUs can no longer be configured.
_INITIALIZED_FIRST = (
    "import tensorflow as tf; tf.constant(1.0).numpy(); import tests.conftest"
)


class ConftestTest(test_case.TestCase):
    @parameterized.named_parameters(("ci", "true"), ("local", None))
    def test_failed_logical_cpu_setup(self, ci):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=_ROOT)
        env.pop("CI", None)
        env.pop("KERAS_BACKEND", None)
        if ci:
            env["CI"] = ci
        result = subprocess.run(
            [sys.executable, "-c", _INITIALIZED_FIRST],
            env=env,
            cwd=_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if ci:
            self.assertNotEqual(result.returncode, 0, result.stderr[-2000:])
            self.assertIn("2 logical CPUs", result.stderr)
        else:
            # Locally the MirroredStrategy tests then skip.
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])


if __name__ == "__main__":
    absltest.main()
