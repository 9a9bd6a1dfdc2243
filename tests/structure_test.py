"""House rules of the code itself: backend-neutral core, short functions."""

import ast
import pathlib

from absl.testing import absltest

from tests import test_case

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_opt"
# The modules allowed to import TensorFlow: the tf.distribute helpers.
TENSORFLOW_MODULES = {"distribute.py"}
MAX_FUNCTION_LINES = 60
MAX_BASE_OPT_LINES = 300


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _code_lines(function):
    """Lines of a function without its docstring."""
    lines = function.end_lineno - function.lineno + 1
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(
        getattr(first, "value", None), ast.Constant
    ):
        if isinstance(first.value.value, str):
            lines -= first.end_lineno - first.lineno + 1
    return lines


class StructureTest(test_case.TestCase):
    def test_core_imports_no_backend(self):
        for path in _modules():
            if path.name in TENSORFLOW_MODULES:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    self.assertFalse(
                        name.split(".")[0] in ("tensorflow", "jax", "torch"),
                        f"{path.relative_to(PACKAGE.parent)} imports {name}",
                    )

    def test_functions_are_short(self):
        long = []
        for path in _modules():
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    if _code_lines(node) > MAX_FUNCTION_LINES:
                        long.append(f"{path.name}:{node.name}")
        self.assertEqual(long, [], f"over {MAX_FUNCTION_LINES} lines")

    def test_base_opt_keeps_the_core_only(self):
        lines = (PACKAGE / "layers" / "base_opt.py").read_text().splitlines()
        self.assertLessEqual(len(lines), MAX_BASE_OPT_LINES)


if __name__ == "__main__":
    absltest.main()
