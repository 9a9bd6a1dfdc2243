import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import _validation


class CheckNumberTest(parameterized.TestCase):
    def test_accepts_and_converts(self):
        self.assertEqual(_validation.check_number("x", 1, "float"), 1.0)
        self.assertIsInstance(_validation.check_number("x", 1, "float"), float)
        self.assertEqual(_validation.check_number("x", np.int64(3), "int"), 3)
        self.assertIsInstance(_validation.check_number("x", np.int64(3), "int"), int)
        self.assertEqual(
            _validation.check_number("x", 0.0, low=0.0, high=1.0, high_inclusive=False), 0.0
        )
        self.assertIsNone(_validation.check_number("x", None, allow_none=True))

    @parameterized.named_parameters(
        ("bool_as_int", True, "int"),
        ("bool_as_float", False, "float"),
        ("float_as_int", 2.0, "int"),
        ("string", "1", "float"),
        ("none", None, "float"),
    )
    def test_type_errors(self, value, kind):
        with self.assertRaisesRegex(
            TypeError, r"Invalid type for argument `x`\. Expected .*Received: x="
        ):
            _validation.check_number("x", value, kind)

    @parameterized.named_parameters(
        ("below_inclusive", -1.0, dict(low=0.0), r"a float >= 0"),
        ("at_exclusive_low", 0.0, dict(low=0.0, low_inclusive=False), r"a float > 0"),
        ("at_exclusive_high", 1.0, dict(low=0.0, high=1.0, high_inclusive=False), r"a float in \[0, 1\)"),
        ("above", 5, dict(kind="int", low=1, high=4), r"an int in \[1, 4\]"),
        ("nan", float("nan"), dict(), r"a float"),
    )
    def test_value_errors(self, value, kwargs, expected):
        with self.assertRaisesRegex(
            ValueError, rf"Invalid value for argument `x`\. Expected {expected}\. Received: x="
        ):
            _validation.check_number("x", value, **kwargs)

    def test_infinite_upper_bound_reads_finite(self):
        with self.assertRaisesRegex(ValueError, r"Expected a finite float >= 0\. "):
            _validation.check_number("x", float("inf"), low=0.0, high=float("inf"), high_inclusive=False)

    def test_none_allowed_message(self):
        with self.assertRaisesRegex(ValueError, r"Expected None or an int >= 1"):
            _validation.check_number("x", 0, "int", low=1, allow_none=True)


if __name__ == "__main__":
    absltest.main()
