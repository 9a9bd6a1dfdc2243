import keras
from absl.testing import absltest

from keras_opt import layers
from keras_opt import models
from tests import test_case


class PaperParameterCountTest(test_case.TestCase):
    def test_counts_rotations_by_manifold_dimension(self):
        inputs = keras.Input((6,))
        x = layers.OPTDense(4, use_bias=True, recipe="official")(inputs)
        x = keras.layers.BatchNormalization()(x)
        outputs = keras.layers.Dense(3)(x)
        model = keras.Model(inputs, outputs)
        # 6·5/2 for R, 4 for the OPT bias, 4·3 + 3 for the Dense; no BN.
        self.assertEqual(models.paper_parameter_count(model), 15 + 4 + 15)

    def test_gains_of_the_default_recipe_count(self):
        model = keras.Sequential(
            [keras.Input((5,)), layers.OPTDense(3, use_bias=False)]
        )
        self.assertEqual(models.paper_parameter_count(model), 10 + 3)

    def test_unconstrained_rotation_counts_in_full(self):
        model = keras.Sequential(
            [
                keras.Input((5,)),
                layers.OPTDense(2, orthogonalizer="upt", recipe="official"),
            ]
        )
        self.assertEqual(models.paper_parameter_count(model), 25 + 2)

    def test_trainable_basis_counts(self):
        model = keras.Sequential(
            [
                keras.Input((5,)),
                layers.OPTDense(2, trainable_basis=True, recipe="official"),
            ]
        )
        self.assertEqual(models.paper_parameter_count(model), 10 + 10 + 2)

    def test_nested_models_and_frozen_layers(self):
        inner = keras.Sequential(
            [
                keras.Input((5,)),
                layers.OPTDense(3, use_bias=False, recipe="official"),
            ]
        )
        outer = keras.Sequential(
            [keras.Input((5,)), inner, keras.layers.Dense(2)]
        )
        self.assertEqual(models.paper_parameter_count(outer), 10 + 8)
        inner.trainable = False
        self.assertEqual(models.paper_parameter_count(outer), 8)

    def test_unbuilt_model_raises(self):
        with self.assertRaisesRegex(ValueError, "needs a built model"):
            models.paper_parameter_count(
                keras.Sequential([keras.layers.Dense(2)])
            )


if __name__ == "__main__":
    absltest.main()
