import numpy as np
from absl.testing import absltest

from keras_opt import layers
from keras_opt import models
from tests import test_case


class MLPTest(test_case.TestCase):
    def test_structure_and_count(self):
        model = models.mlp(hidden_units=(32, 16), input_shape=(8, 8, 1))
        dense = [l for l in model.layers if isinstance(l, layers.OPTDense)]
        self.assertEqual([l.rotation.shape[0] for l in dense], [64, 32])
        self.assertEqual(
            models.paper_parameter_count(model),
            64 * 63 // 2 + 32 * 31 // 2 + 16 * 10,
        )

    def test_saved_model_gives_the_same_outputs(self):
        model = models.mlp(orthogonalizer="householder", hidden_units=(32,))
        x = np.random.default_rng(0).uniform(0, 255, (3, 28, 28, 1))
        self.run_model_saving_test(model, x.astype("float32"))


if __name__ == "__main__":
    absltest.main()
