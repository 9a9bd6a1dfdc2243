"""Conformance suite run over every registered orthogonalizer.

A new orthogonalizer added to `orthogonalizers.ALL_OBJECTS` is tested here
without new test code.
"""

import functools

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import linalg
from keras_opt import orthogonalizers
from keras_opt import regularizers
from tests import test_case

ALL = sorted(orthogonalizers.ALL_OBJECTS, key=lambda cls: cls.__name__)
EXACT = [cls for cls in ALL if cls.is_exact]
# The maps as layers use them: Gram–Schmidt of the columns too (the default
# recipe's), besides each class's own default (the rows).
GRAM_SCHMIDT_COLUMNS = (
    "GramSchmidt_columns",
    functools.partial(orthogonalizers.GramSchmidt, vectors="columns"),
)


def named(classes):
    return [(cls.__name__, cls) for cls in classes]


def maps(classes):
    return named(classes) + [GRAM_SCHMIDT_COLUMNS]


def sample_points(d, seed=0):
    """Random, identity, orthogonal and near-singular (cond 1e4) matrices."""
    rng = np.random.default_rng(seed)
    random = rng.standard_normal((d, d))
    u, _, vt = np.linalg.svd(rng.standard_normal((d, d)))
    singular = (u * np.logspace(0, -4, d)) @ vt
    return {
        "random": random,
        "identity": np.eye(d),
        "orthogonal": u @ vt,
        "near_singular": singular,
    }


def finite_difference_gradient(function, p, cotangent, step=1e-5):
    """Richardson-extrapolated central differences of `sum(f(P) * C)`."""
    d = p.shape[0]
    directions = np.eye(d * d).reshape(d * d, d, d)

    def central(h):
        plus = np.asarray(function(p[None] + h * directions))
        minus = np.asarray(function(p[None] - h * directions))
        return np.sum((plus - minus) * cotangent, axis=(-2, -1)) / (2 * h)

    values = (4.0 * central(step / 2) - central(step)) / 3.0
    return values.reshape(d, d)


class OrthogonalizerConformanceTest(test_case.TestCase):
    @parameterized.named_parameters(maps(EXACT))
    def test_orthonormal_float32(self, cls):
        orthogonalizer = cls()
        for d in (1, 2, 3, 16, 64, 257, 1024):
            p = np.random.default_rng(d).standard_normal((d, d))
            r = orthogonalizer(p.astype("float32"))
            self.assertOrthonormal(r, atol=1e-5)

    @parameterized.named_parameters(maps(EXACT))
    def test_orthonormal_ill_conditioned(self, cls):
        orthogonalizer = cls()
        for d in (16, 256):
            for condition in (1e2, 1e4):
                rng = np.random.default_rng(d)
                u, _, vt = np.linalg.svd(rng.standard_normal((d, d)))
                p = (u * np.logspace(0, -np.log10(condition), d)) @ vt
                self.assertOrthonormal(
                    orthogonalizer(p.astype("float32")), atol=1e-5
                )

    @parameterized.named_parameters(maps(ALL))
    def test_shapes_and_dtypes(self, cls):
        orthogonalizer = cls()
        for dtype in ("float32", "float64"):
            p = np.random.default_rng(0).standard_normal((2, 3, 5, 5))
            r = orthogonalizer(p.astype(dtype))
            self.assertEqual(tuple(r.shape), (2, 3, 5, 5))
            self.assertEqual(keras.backend.standardize_dtype(r.dtype), dtype)
            single = orthogonalizer(p[1, 2].astype(dtype))
            self.assertAllClose(r[1, 2], single, atol=1e-5)

    @parameterized.named_parameters(maps(ALL))
    def test_gradients_match_finite_differences(self, cls):
        orthogonalizer = cls()
        d = 5
        cotangent = np.random.default_rng(7).standard_normal((d, d))
        for point, p in sample_points(d).items():

            def loss(x):
                return keras.ops.sum(orthogonalizer(x) * cotangent)

            analytic = test_case.gradient(loss, p)
            numeric = finite_difference_gradient(orthogonalizer, p, cotangent)
            scale = max(1.0, np.max(np.abs(numeric)))
            error = np.max(np.abs(analytic - numeric)) / scale
            self.assertLess(error, 1e-6, f"{point}: relative error {error:.3g}")

    @parameterized.named_parameters(maps(ALL))
    def test_rotate_matches_product_and_its_gradients(self, cls):
        orthogonalizer = cls()
        d, n = 5, 3
        rng = np.random.default_rng(11)
        basis = rng.standard_normal((d, n))
        cotangent = rng.standard_normal((d, n))
        for point, p in sample_points(d).items():
            self.assertAllClose(
                orthogonalizer.rotate(p, basis),
                np.asarray(orthogonalizer(p)) @ basis,
                atol=1e-12,
            )

            def loss_p(x):
                return keras.ops.sum(orthogonalizer.rotate(x, basis) * cotangent)

            def loss_v(v):
                return keras.ops.sum(orthogonalizer.rotate(p, v) * cotangent)

            numeric = finite_difference_gradient(
                orthogonalizer, p, cotangent @ basis.T
            )
            analytic = test_case.gradient(loss_p, p)
            scale = max(1.0, np.max(np.abs(numeric)))
            error = np.max(np.abs(analytic - numeric)) / scale
            self.assertLess(error, 1e-6, f"{point}: relative error {error:.3g}")
            self.assertAllClose(
                test_case.gradient(loss_v, basis),
                np.asarray(orthogonalizer(p)).T @ cotangent,
                atol=1e-10,
            )

    @parameterized.named_parameters(maps(ALL))
    def test_degenerate_input_gives_no_nan(self, cls):
        orthogonalizer = cls()
        rank_one = np.outer(np.arange(1.0, 5.0), np.ones(4))
        for p in (np.zeros((4, 4)), rank_one):
            for dtype in ("float32", "float64"):
                x = p.astype(dtype)
                self.assertAllFinite(orthogonalizer(x))

                def loss(x):
                    return keras.ops.sum(orthogonalizer(x))

                self.assertAllFinite(test_case.gradient(loss, x))

    @parameterized.named_parameters(named(ALL))
    def test_config_round_trip(self, cls):
        orthogonalizer = cls()
        revived = self.run_serialization_test(orthogonalizer)
        self.assertIsInstance(revived, cls)
        self.assertEqual(revived.get_config(), orthogonalizer.get_config())
        from_get = orthogonalizers.get(orthogonalizers.serialize(orthogonalizer))
        self.assertIsInstance(from_get, cls)

    @parameterized.named_parameters(named(ALL))
    def test_rotation_initializer(self, cls):
        # The default start is the map's identity point: R = φ(P₀) = I
        # (Householder: a reflection of the last column when d is even).
        orthogonalizer = cls()
        values = np.asarray(orthogonalizer.rotation_initializer((64, 64)))
        expected = np.zeros((64, 64)) if cls is orthogonalizers.Cayley else (
            np.eye(64)
        )
        self.assertAllEqual(values, expected)
        rotation = np.asarray(orthogonalizer(values), np.float64)
        identity = np.eye(64)
        if cls is orthogonalizers.Householder:
            identity[-1, -1] = -1.0
        self.assertAllClose(rotation, identity, atol=1e-6)
        # The official code's start: N(0, 1), the identity for OGD.
        official = np.asarray(
            orthogonalizer.official_rotation_initializer((64, 64))
        )
        if cls.is_stiefel:
            self.assertAllEqual(official, np.eye(64))
        else:
            self.assertAlmostEqual(float(np.std(official)), 1.0, delta=0.05)
            self.assertAlmostEqual(float(np.mean(official)), 0.0, delta=0.05)


class RegistryTest(test_case.TestCase):
    def test_every_name_and_alias(self):
        expected = {
            "gram_schmidt": orthogonalizers.GramSchmidt,
            "gs": orthogonalizers.GramSchmidt,
            "householder": orthogonalizers.Householder,
            "hr": orthogonalizers.Householder,
            "lowdin": orthogonalizers.Lowdin,
            "ls": orthogonalizers.Lowdin,
            "cayley": orthogonalizers.Cayley,
            "cp": orthogonalizers.Cayley,
            "newton_schulz": orthogonalizers.NewtonSchulz,
            "stiefel": orthogonalizers.Stiefel,
            "ogd": orthogonalizers.Stiefel,
            "penalty": orthogonalizers.Penalty,
            "or": orthogonalizers.Penalty,
            "unconstrained": orthogonalizers.Unconstrained,
            "upt": orthogonalizers.Unconstrained,
        }
        for name, cls in expected.items():
            self.assertIsInstance(orthogonalizers.get(name), cls)
            self.assertIsInstance(orthogonalizers.get(name.upper()), cls)
        self.assertEqual(set(orthogonalizers.ALIASES), set(expected))

    def test_unknown_name_lists_choices(self):
        with self.assertRaisesRegex(ValueError, "Did you mean 'householder'"):
            orthogonalizers.get("housholder")
        with self.assertRaisesRegex(ValueError, "'gram_schmidt'.*'upt'"):
            orthogonalizers.get("qr")
        with self.assertRaisesRegex(ValueError, "Received: orthogonalizer=3"):
            orthogonalizers.get(3)

    def test_instances_classes_and_callables(self):
        instance = orthogonalizers.Cayley()
        self.assertIs(orthogonalizers.get(instance), instance)
        self.assertIsInstance(
            orthogonalizers.get(orthogonalizers.Lowdin), orthogonalizers.Lowdin
        )
        self.assertIsNone(orthogonalizers.get(None))
        wrapped = orthogonalizers.get(keras.ops.negative)
        self.assertIsInstance(wrapped, orthogonalizers.FunctionOrthogonalizer)
        self.assertAllClose(wrapped(np.eye(2)), -np.eye(2))

    def test_every_class_has_a_name(self):
        self.assertEqual(
            set(orthogonalizers.ALIASES.values()), orthogonalizers.ALL_OBJECTS
        )

    def test_penalty_regularizer_value(self):
        # Non-symmetric P, so that P Pᵀ and PᵀP differ entry by entry.
        p = np.random.default_rng(0).standard_normal((4, 4))
        norm = np.linalg.norm(p @ p.T - np.eye(4))
        regularizer = orthogonalizers.get("or").rotation_regularizer
        self.assertIsInstance(regularizer, regularizers.OrthogonalityPenalty)
        self.assertAllClose(regularizer(p), 0.1 * norm, atol=1e-10)
        squared = orthogonalizers.Penalty(beta=0.5, squared=True)
        self.assertAllClose(
            squared.rotation_regularizer(p), 0.5 * norm**2, atol=1e-8
        )
        # Exactly what Penalty computed before it became a regularizer.
        p32 = p.astype("float32")
        self.assertAllEqual(
            squared.rotation_regularizer(p32),
            0.5 * linalg.orthogonality_penalty(p32, squared=True),
        )

    @parameterized.named_parameters(named(ALL))
    def test_only_penalty_has_a_rotation_regularizer(self, cls):
        regularizer = cls().rotation_regularizer
        if cls is orthogonalizers.Penalty:
            self.assertIsNotNone(regularizer)
        else:
            self.assertIsNone(regularizer)

    def test_gram_schmidt_vectors(self):
        p = np.random.default_rng(3).standard_normal((6, 6))
        rows = orthogonalizers.GramSchmidt(vectors="rows")
        columns = orthogonalizers.GramSchmidt(vectors="columns")
        self.assertAllClose(columns(p), np.asarray(rows(p.T)).T, atol=1e-12)
        self.assertAllClose(orthogonalizers.GramSchmidt()(p), rows(p), atol=0)
        # Each is invariant to the scales of its own vectors only.
        scales = np.diag(np.linspace(0.5, 3.0, 6))
        self.assertAllClose(rows(scales @ p), rows(p), atol=1e-12)
        self.assertAllClose(columns(p @ scales), columns(p), atol=1e-12)
        moved = np.asarray(columns(scales @ p)) - np.asarray(columns(p))
        self.assertGreater(np.max(np.abs(moved)), 0.1)

    def test_gram_schmidt_oriented_only_when_open(self):
        open_map = orthogonalizers.GramSchmidt(epsilon=1e-4)
        oriented = open_map.oriented("columns")
        self.assertIsNot(oriented, open_map)
        self.assertIsNone(open_map.vectors)
        self.assertEqual(oriented.vectors, "columns")
        self.assertEqual(oriented.epsilon, 1e-4)
        chosen = orthogonalizers.GramSchmidt(vectors="rows")
        self.assertIs(chosen.oriented("columns"), chosen)
        cayley = orthogonalizers.Cayley()
        self.assertIs(cayley.oriented("columns"), cayley)

    def test_gram_schmidt_config_of_version_0_2_takes_the_rows(self):
        revived = orthogonalizers.deserialize(
            {"class_name": "GramSchmidt", "config": {"epsilon": 1e-6}}
        )
        self.assertEqual(revived.vectors, "rows")
        config = orthogonalizers.GramSchmidt().get_config()
        self.assertIsNone(orthogonalizers.GramSchmidt.from_config(config).vectors)

    def test_invalid_hyperparameters(self):
        with self.assertRaisesRegex(ValueError, "`beta`.*Received: beta=-1"):
            orthogonalizers.Penalty(beta=-1)
        with self.assertRaisesRegex(ValueError, "num_iterations=0"):
            orthogonalizers.NewtonSchulz(num_iterations=0)
        with self.assertRaisesRegex(ValueError, "max_condition=0.5"):
            orthogonalizers.NewtonSchulz(max_condition=0.5)
        with self.assertRaisesRegex(ValueError, "epsilon=2"):
            orthogonalizers.GramSchmidt(epsilon=2)
        with self.assertRaisesRegex(
            ValueError, r"Expected one of \[None, 'rows', 'columns'\]. "
            "Received: vectors='cols'"
        ):
            orthogonalizers.GramSchmidt(vectors="cols")

    def test_invalid_hyperparameter_types(self):
        with self.assertRaisesRegex(TypeError, "Received: beta=True"):
            orthogonalizers.Penalty(beta=True)
        with self.assertRaisesRegex(TypeError, "Received: num_iterations=True"):
            orthogonalizers.NewtonSchulz(num_iterations=True)
        with self.assertRaisesRegex(TypeError, "Received: num_iterations=2.5"):
            orthogonalizers.NewtonSchulz(num_iterations=2.5)
        with self.assertRaisesRegex(TypeError, "Received: squared='yes'"):
            orthogonalizers.Penalty(squared="yes")
        with self.assertRaisesRegex(TypeError, "Received: epsilon='0.1'"):
            orthogonalizers.Cayley() and orthogonalizers.Lowdin(epsilon="0.1")


if __name__ == "__main__":
    absltest.main()
