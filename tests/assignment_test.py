import itertools

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from keras_opt import assignment
from keras_opt import energy
from keras_opt import initializers
from tests import test_case


def brute_force_cost(cost):
    n = cost.shape[0]
    return min(
        cost[np.arange(n), list(p)].sum()
        for p in itertools.permutations(range(n))
    )


def gaussian_prototypes(dim, count):
    """Unit Gaussian columns and their negatives: centred, as embeddings are."""
    x = np.random.default_rng(dim).standard_normal((dim, count // 2))
    x /= np.linalg.norm(x, axis=0)
    return np.concatenate([x, -x], axis=1)


def gram(prototypes):
    return prototypes.T @ prototypes


def regular_polygon(count):
    angles = 2 * np.pi * np.arange(count) / count
    return np.stack([np.cos(angles), np.sin(angles)])


class LinearSumAssignmentTest(test_case.TestCase):
    @parameterized.parameters(1, 2, 3, 5, 6)
    def test_least_cost_as_brute_force(self, n):
        rng = np.random.default_rng(n)
        for cost in (
            rng.standard_normal((n, n)),
            rng.integers(0, 3, (n, n)).astype(float),  # many ties
            np.ones((n, n)),
        ):
            columns = assignment.linear_sum_assignment(cost)
            self.assertEqual(sorted(columns), list(range(n)))
            self.assertAllClose(
                cost[np.arange(n), columns].sum(), brute_force_cost(cost)
            )

    def test_identity_cost_keeps_the_diagonal(self):
        cost = 1.0 - np.eye(40)
        self.assertAllEqual(assignment.linear_sum_assignment(cost),
                            np.arange(40))

    def test_invalid_cost(self):
        with self.assertRaisesRegex(ValueError, "square 2-D array"):
            assignment.linear_sum_assignment(np.ones((2, 3)))
        with self.assertRaisesRegex(ValueError, "finite entries"):
            assignment.linear_sum_assignment([[0.0, np.nan], [1.0, 0.0]])


class MatchPrototypesTest(test_case.TestCase):
    def _embed(self, points, classes_of, width):
        """Class c at `points[:, classes_of[c]]`, rotated, lifted, shifted."""
        dim = points.shape[0]
        rng = np.random.default_rng(0)
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        lift, _ = np.linalg.qr(rng.standard_normal((width, dim)))
        embedded = (rotation @ points[:, classes_of]).T @ lift.T
        return 3.0 * embedded + rng.standard_normal(width)

    @parameterized.named_parameters(
        # More coordinates than d: PCA brings them back to d.
        # In 4-D the alternation has local optima: 8 starts miss this one.
        ("gaussian_lifted", lambda: gaussian_prototypes(4, 8), 30, 64),
        ("polygon_lifted", lambda: regular_polygon(10), 50, 8),
        # Fewer coordinates than d (prototypes in a plane of 3-D).
        ("gaussian_padded", lambda: np.concatenate(
            [gaussian_prototypes(2, 6), np.zeros((1, 6))]), 2, 8),
    )
    def test_recovers_a_rotated_permuted_copy(self, make_prototypes, width,
                                              num_starts):
        prototypes = make_prototypes()
        dim, count = prototypes.shape
        classes_of = np.random.default_rng(1).permutation(count)
        points = prototypes[:width] if width < dim else prototypes
        embeddings = self._embed(points, classes_of, max(width, len(points)))
        order = assignment.match_prototypes(embeddings, prototypes,
                                            num_starts=num_starts)
        # Equal up to the prototypes' symmetries (a polygon's rotations):
        # every pair of classes gets the angle it had.
        self.assertAllClose(gram(prototypes[:, order]),
                            gram(prototypes[:, classes_of]), atol=1e-9)

    def test_circle_keeps_the_cyclic_order(self):
        # Classes at uneven angles on a circle, in a shuffled class order:
        # neighbours on the circle get neighbouring prototypes.
        rng = np.random.default_rng(0)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 10))
        classes = rng.permutation(10)
        embeddings = np.empty((10, 2))
        embeddings[classes] = np.stack([np.cos(angles), np.sin(angles)], 1)
        prototypes = regular_polygon(10)
        order = assignment.match_prototypes(embeddings, prototypes)
        steps = np.diff(order[classes].tolist() + [order[classes[0]]]) % 10
        self.assertTrue(set(steps) in ({1}, {9}), steps)

    def test_more_starts_never_match_worse(self):
        prototypes = gaussian_prototypes(4, 8)
        embeddings = np.random.default_rng(2).standard_normal((8, 5))

        def score(order):
            reduced = assignment._unit_rows(assignment._reduce(embeddings, 4))
            singular = np.linalg.svd(reduced.T @ prototypes[:, order].T,
                                     compute_uv=False)
            return singular.sum()  # the best rotation's total cosine

        scores = [
            score(assignment.match_prototypes(embeddings, prototypes,
                                              num_starts=n))
            for n in (1, 4, 16, 64)
        ]
        self.assertAllEqual(np.diff(scores) >= -1e-9, [True] * 3)

    def test_energy_unchanged(self):
        prototypes = keras.ops.convert_to_numpy(
            initializers.MinimumEnergy(seed=0)((3, 12)))
        embeddings = np.random.default_rng(0).standard_normal((12, 7))
        order = assignment.match_prototypes(embeddings, prototypes)
        self.assertEqual(sorted(order), list(range(12)))
        self.assertAllClose(
            energy.hyperspherical_energy(prototypes[:, order]),
            energy.hyperspherical_energy(prototypes),
        )

    def test_invalid_arguments(self):
        prototypes = regular_polygon(5)
        with self.assertRaisesRegex(ValueError, r"one row\s+per prototype"):
            assignment.match_prototypes(np.ones((4, 3)), prototypes)
        with self.assertRaisesRegex(ValueError, "num_starts"):
            assignment.match_prototypes(np.ones((5, 3)), prototypes,
                                        num_starts=0)
        with self.assertRaisesRegex(ValueError, "at most 4096 classes"):
            assignment.match_prototypes(np.ones((4097, 2)),
                                        np.ones((2, 4097)))


if __name__ == "__main__":
    absltest.main()
