"""Runs the ```python snippets of README.md, in order, in one namespace."""

import contextlib
import io
import os
import re

import numpy as np
from absl.testing import absltest

from tests import test_case

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


# The section whose snippets need TensorFlow (tf.distribute, tf.data); its
# own test runs them, and tests/backends.py marks that test TF-only.
DISTRIBUTED_SECTION = "## Distributed training"
# What the sections before it import.
EARLIER_IMPORTS = """
import os
import tempfile

import keras
import numpy as np

import keras_opt
"""


def python_blocks(text):
    """Returns the bodies of the ```python fenced blocks of a markdown text."""
    return re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)


def readme_blocks():
    """The README's python blocks outside and inside `DISTRIBUTED_SECTION`."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    head, section = text.split(DISTRIBUTED_SECTION + "\n", 1)
    section, tail = section.split("\n## ", 1)
    return python_blocks(head + "\n## " + tail), python_blocks(section)


def run_blocks(blocks, namespace, name):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        for index, block in enumerate(blocks):
            code = compile(block, f"README.md {name} block {index}", "exec")
            exec(code, namespace)
    return output.getvalue()


class ReadmeTest(test_case.TestCase):
    def test_python_blocks_are_found(self):
        text = "a\n```python\nx = 1\n```\n```sh\nls\n```\n```python\ny\n```\n"
        self.assertEqual(python_blocks(text), ["x = 1\n", "y\n"])

    def test_quickstart_has_two_commands(self):
        with open(README, encoding="utf-8") as f:
            text = f.read()
        quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
        shell = re.findall(r"^```sh\n(.*?)^```$", quickstart, re.S | re.M)
        self.assertLen(shell, 1)
        commands = [line.split("#")[0].strip() for line in shell[0].split("\n")]
        commands = [command for command in commands if command]
        self.assertEqual(
            commands, ["./scripts/run_main.sh", "./scripts/run_tests.sh"]
        )
        root = os.path.dirname(README)
        for command in commands:
            self.assertTrue(os.access(os.path.join(root, command), os.X_OK))

    def test_snippets_run(self):
        blocks, _ = readme_blocks()
        self.assertGreaterEqual(len(blocks), 4)
        namespace = {"__name__": "readme"}
        output = run_blocks(blocks, namespace, "python")

        # The invariants the tour describes.
        self.assertEqual(tuple(namespace["W"].shape), (144, 10))
        self.assertOrthonormal(namespace["R"])
        self.assertAllClose(
            namespace["W"],
            np.asarray(namespace["R"]) @ np.asarray(namespace["dense"].basis),
            atol=1e-5,
        )
        self.assertOrthonormal(namespace["conv"].rotation)
        self.assertAllClose(
            namespace["energy_w"], namespace["energy_v"], rtol=1e-4
        )
        logs = namespace["history"].history
        self.assertIn("loss", logs)
        self.assertGreater(len(logs), 1)  # the callbacks added their scalars
        self.assertEqual(int(namespace["sopt_dense"].subspace_episode), 2)
        self.assertEqual(
            tuple(namespace["sopt_dense"].rotation_parameter.shape), (16, 16)
        )
        self.assertIn("1358527\n", output)
        self.assertIn("90871\n", output)
        self.assertIn("2016\n", output)

    def test_distributed_training_snippets_run(self):
        _, blocks = readme_blocks()
        self.assertNotEmpty(blocks)
        namespace = {"__name__": "readme"}
        run_blocks([EARLIER_IMPORTS] + blocks, namespace, "distributed")
        logs = namespace["train_logs"]
        self.assertLen(logs["loss"], 2)
        self.assertAllFinite(logs["loss"])
        # The monitor ran as a callback of distribute.train, every epoch.
        key = "orthogonality/" + namespace["net"].layers[0].name
        self.assertLen(logs[key], 2)
        self.assertLessEqual(max(logs[key]), 1e-4)


if __name__ == "__main__":
    absltest.main()
