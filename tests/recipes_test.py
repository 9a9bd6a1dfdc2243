"""The recipes, and the first-step property of the default recipe."""

import copy

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

import keras_opt
from keras_opt import orthogonalizers
from keras_opt import recipes
from tests import linalg_test
from tests import test_case

EXACT = sorted(
    {cls for cls in orthogonalizers.ALIASES.values() if cls.is_exact},
    key=lambda cls: cls.__name__,
)


def shrinking_recipe():
    """The default recipe with Cayley's shrinking Adam steps (before 0.4.0)."""
    recipe = copy.copy(recipes.DEFAULT)
    recipe.adam_steps_like_ogd = False
    recipe.shrinks_adam_steps = True
    return recipe


def first_step(orthogonalizer, recipe, d=64, learning_rate=1e-3, seed=0):
    """‖ΔR‖_F after one SGD step from the start on a fixed gradient of R."""
    layer = keras_opt.layers.OPTDense(
        4, orthogonalizer=orthogonalizer, recipe=recipe
    )
    layer.build((None, d))
    if recipe == "official":
        identity = orthogonalizer.rotation_initializer((d, d), "float32")
        layer.rotation_parameter.assign(identity)
    gradient_of_r = np.random.default_rng(seed).standard_normal((d, d))
    before = np.asarray(layer.rotation, np.float64)
    gradient = test_case.gradient(
        lambda p: _pairing(layer, recipe, p, gradient_of_r),
        np.asarray(layer.rotation_parameter),
    )
    layer.rotation_parameter.assign(
        np.asarray(layer.rotation_parameter) - learning_rate * gradient
    )
    return np.linalg.norm(np.asarray(layer.rotation, np.float64) - before)


def first_adam_step(orthogonalizer, recipe, gradient_of_r):
    """‖ΔR‖_F after one `StiefelAdam` step (rotation rate 0.1) from the start."""
    layer = keras_opt.layers.OPTDense(
        4, orthogonalizer=orthogonalizer, recipe=recipe
    )
    layer.build((None, len(gradient_of_r)))
    before = np.asarray(layer.rotation, np.float64)
    gradient = test_case.gradient(
        lambda p: _pairing(layer, recipe, p, gradient_of_r),
        np.asarray(layer.rotation_parameter),
    )
    optimizer = keras_opt.optimizers.StiefelAdam(
        learning_rate=0.01, rotation_learning_rate=0.1
    )
    optimizer.apply([gradient.astype("float32")], [layer.rotation_parameter])
    return np.linalg.norm(np.asarray(layer.rotation, np.float64) - before)


def _pairing(layer, recipe, p, gradient_of_r):
    """⟨G, R(P)⟩ through the layer's map and `recipe`, P a tensor."""
    recipe = recipes.get(recipe)
    rotation = layer.orthogonalizer(recipe.map_input(layer.orthogonalizer, p))
    return keras.ops.sum(rotation * keras.ops.cast(gradient_of_r, p.dtype))


class RecipesTest(test_case.TestCase):
    @parameterized.named_parameters((cls.__name__, cls) for cls in EXACT)
    def test_first_step_moves_r_as_far_as_gram_schmidt(self, cls):
        reference = first_step(orthogonalizers.GramSchmidt(), "default")
        self.assertAllClose(
            first_step(cls(), "default"), reference, rtol=0.1, atol=0.0
        )

    @parameterized.named_parameters((cls.__name__, cls) for cls in EXACT)
    def test_first_adam_step_moves_r_as_far_as_ogds(self, cls):
        # For a gradient of R tangent at the identity (skew), OGD's first
        # StiefelAdam step moves R by the rotation learning rate; so does
        # every exact map's, with or without the equal first SGD step.
        gradient = np.random.default_rng(3).standard_normal((16, 16))
        gradient = gradient - gradient.T
        ogd = first_adam_step("ogd", "default", gradient)
        self.assertAllClose(ogd, 0.1, rtol=0.01, atol=0)
        unequal = copy.copy(recipes.DEFAULT)
        unequal.equal_first_step = False
        for recipe in ("default", unequal):
            self.assertAllClose(first_adam_step(cls(), recipe, gradient), ogd,
                                rtol=0.01, atol=0)

    def test_official_recipe_keeps_the_maps_own_steps(self):
        steps = {
            cls.__name__: first_step(cls(), "official") for cls in EXACT
        }
        gram_schmidt = steps["GramSchmidt"]
        self.assertAllClose(steps["Householder"], gram_schmidt, rtol=0.1)
        self.assertAllClose(steps["Cayley"], 4 * gram_schmidt, rtol=0.1)
        self.assertAllClose(steps["Lowdin"], gram_schmidt / 2, rtol=0.1)

    def test_layers_take_the_recipe(self):
        official = keras_opt.layers.OPTDense(3, recipe="official")
        self.assertFalse(official.use_gain)
        self.assertIsInstance(
            official.rotation_initializer, keras.initializers.RandomNormal
        )
        default = keras_opt.layers.OPTDense(3, orthogonalizer="cayley")
        self.assertTrue(default.use_gain)
        self.assertIsInstance(
            default.rotation_initializer, keras.initializers.Zeros
        )
        explicit = keras_opt.layers.OPTDense(3, use_gain=False)
        explicit.build((None, 4))
        self.assertIsNone(explicit.log_gain)
        self.assertEqual(explicit.get_config()["use_gain"], False)

    def test_gram_schmidt_takes_the_recipes_vectors(self):
        rng = np.random.default_rng(4)
        p = rng.standard_normal((6, 6)).astype("float32")
        scales = np.diag(np.linspace(0.5, 3.0, 6)).astype("float32")
        for recipe, vectors in (("default", "columns"), ("official", "rows")):
            layer = keras_opt.layers.OPTDense(3, recipe=recipe)
            layer.build((None, 6))
            self.assertEqual(layer.orthogonalizer.vectors, vectors)
            self.assertEqual(
                recipes.get(recipe).orthonormalized_vectors,
                vectors,
            )
            layer.rotation_parameter.assign(p)
            expected = linalg_test.numpy_gram_schmidt(
                p.astype(np.float64), vectors
            )
            self.assertAllClose(layer.rotation, expected, atol=1e-5)
            scaled = p @ scales if vectors == "columns" else scales @ p
            layer.rotation_parameter.assign(scaled)
            self.assertAllClose(layer.rotation, expected, atol=1e-5)
        chosen = keras_opt.layers.OPTDense(
            3, orthogonalizer=orthogonalizers.GramSchmidt(vectors="rows")
        )
        self.assertEqual(chosen.orthogonalizer.vectors, "rows")

    def test_gram_schmidt_layers_of_version_0_2_keep_the_rows(self):
        # Version 0.2 wrote the map's config without `vectors`: its layers
        # took the rows under every recipe, and load as they were trained.
        layer = keras_opt.layers.OPTDense(3)
        config = layer.get_config()
        del config["orthogonalizer"]["config"]["vectors"]
        self.assertEqual(
            keras_opt.layers.OPTDense.from_config(config).orthogonalizer.vectors,
            "rows",
        )
        revived = keras_opt.layers.OPTDense.from_config(layer.get_config())
        self.assertEqual(revived.orthogonalizer.vectors, "columns")

    def test_rotation_regularizer_by_recipe(self):
        gs = orthogonalizers.get("gs")
        self.assertIsNone(recipes.DEFAULT.rotation_regularizer(gs, 5e-4))
        l2 = recipes.OFFICIAL.rotation_regularizer(gs, 5e-4)
        self.assertAllClose(l2.l2, 2.5e-4)
        self.assertIsNone(
            recipes.OFFICIAL.rotation_regularizer(orthogonalizers.get("ogd"), 5e-4)
        )

    @parameterized.named_parameters((cls.__name__, cls) for cls in EXACT)
    def test_is_scale_invariant_is_true_of_the_map(self, cls):
        orthogonalizer = cls()
        p = np.eye(8) + 0.3 * np.random.default_rng(0).standard_normal((8, 8))
        p = p.astype("float32")
        same = np.allclose(orthogonalizer(3.0 * p), orthogonalizer(p),
                           atol=1e-4)
        self.assertEqual(same, cls.is_scale_invariant)

    @parameterized.named_parameters((cls.__name__, cls) for cls in EXACT)
    def test_default_recipe_steps_every_exact_p_as_a_rotation(self, cls):
        # StiefelAdam reads the tags (tests/optimizers/stiefel_adam_test.py).
        shrinking = shrinking_recipe()
        tags = keras_opt.variable_tags
        for recipe, rotation, damped in (
                ("default", True, False), ("official", False, False),
                (shrinking, False, not cls.is_scale_invariant)):
            layer = keras_opt.layers.OPTDense(
                3, orthogonalizer=cls(), recipe=recipe)
            layer.build((None, 5))
            p = layer.rotation_parameter
            self.assertEqual(tags.is_rotation_step(p), rotation)
            self.assertEqual(tags.is_damped_step(p), damped)
        for name in ("ogd", "upt", "or"):
            layer = keras_opt.layers.OPTDense(3, orthogonalizer=name)
            layer.build((None, 5))
            self.assertFalse(tags.is_rotation_step(layer.rotation_parameter))
            self.assertFalse(tags.is_damped_step(layer.rotation_parameter))

    def test_custom_maps_are_damped_only_when_they_say_so(self):
        class Undeclared(orthogonalizers.Orthogonalizer):
            is_exact = True

            def __call__(self, matrix):
                return keras_opt.linalg.cayley(matrix)

        class Declared(Undeclared):
            is_scale_invariant = False

        shrinking = shrinking_recipe()
        self.assertFalse(shrinking.damps_step(Undeclared()))
        self.assertTrue(shrinking.damps_step(Declared()))
        self.assertFalse(recipes.OFFICIAL.damps_step(Declared()))
        # Stepping P as a rotation takes precedence over shrinking.
        self.assertTrue(recipes.DEFAULT.steps_like_ogd(Declared()))
        self.assertFalse(recipes.DEFAULT.damps_step(Declared()))

    def test_unknown_recipe(self):
        with self.assertRaisesRegex(ValueError, r"\['default', 'official'\]"):
            keras_opt.layers.OPTDense(3, recipe="fast")


if __name__ == "__main__":
    absltest.main()
