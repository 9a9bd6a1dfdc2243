"""Every entry of the backend tables in tests/backends.py names a test."""

import os
import subprocess
import sys

from absl.testing import absltest

from tests import backends
from tests import test_case

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collected_node_ids(paths):
    """The node ids pytest collects from `paths`, without running them."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q",
         "-p", "no:cacheprovider", *paths],
        cwd=ROOT,
        env=dict(
            os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_OPT_BACKEND_TABLES="off"
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(result.stdout[-4000:] + result.stderr[-4000:])
    return [line for line in result.stdout.splitlines() if "::" in line]


class BackendTablesTest(test_case.TestCase):
    def test_every_pattern_names_a_test(self):
        all_tables = (
            backends.TF_ONLY,
            backends.ONE_RUN,
            backends.JAX_FAILURES,
            backends.CORE,
            backends.SLOW_CORE,
        )
        tables = {k: v for table in all_tables for k, v in table.items()}
        paths = sorted(
            {pattern.split("::")[0].rstrip("*") for pattern in tables}
        )
        for path in paths:
            self.assertNotIn("*", path, "patterns name files or folders")
            self.assertTrue(os.path.exists(os.path.join(ROOT, path)), path)
        node_ids = collected_node_ids(paths)
        for table in all_tables:
            for pattern in table:
                matched = [
                    node_id
                    for node_id in node_ids
                    if backends.match(node_id, {pattern: ""})
                ]
                self.assertNotEmpty(matched, f"stale entry: {pattern}")

    def test_a_pattern_matches_its_tests_only(self):
        table = {"tests/a_test.py::*::test_x*": "why"}
        self.assertEqual(
            backends.match("tests/a_test.py::C::test_x1", table),
            ("tests/a_test.py::*::test_x*", "why"),
        )
        self.assertIsNone(backends.match("tests/a_test.py::C::test_y", table))
        whole_file = {"tests/a_test.py": "why"}
        match = backends.match("tests/a_test.py::C::t", whole_file)
        self.assertIsNotNone(match)
        self.assertIsNone(backends.match("tests/a_test.pyx::C::t", whole_file))


if __name__ == "__main__":
    absltest.main()
