"""OPTClassifier: CLS-OPT, a head of fixed prototypes and a learned rotation."""

import random

import keras
from keras import ops

from keras_opt import assignment
from keras_opt import initializers
from keras_opt.layers import _docstrings
from keras_opt.layers import blocks
from keras_opt.layers.opt_dense import OPTDense


@keras.saving.register_keras_serializable(package="keras_opt")
@_docstrings.with_opt_arguments
class OPTClassifier(OPTDense):
    """Classifier head trained by OPT: CLS-OPT of the OPT paper.

    The logits are `z = x·R·V`: V (`basis`, shape `(d, num_classes)`) holds
    one class prototype per column, drawn once and frozen; R (`rotation`,
    `(d, d)`) is a learned orthogonal matrix made by the orthogonalizer from
    the trainable `rotation_parameter` P. The head learns d(d−1)/2
    parameters instead of the d·C of a `Dense` classifier, and the
    prototypes keep the pairwise angles of their start. By default they
    start evenly spread (`keras_opt.initializers.MinimumEnergy`: a regular
    simplex when C ≤ d + 1, else a short descent of the hyperspherical
    energy, or Gaussian where C²·d is too large for it), so that few
    prototypes in a low dimension do not collide as random ones do. Use it
    for very many classes (the paper: ImageNet-1k, 10,575 face identities);
    it is tested up to C = 100,000 at d = 512.

    The product is computed as `(x·R)·V`, never forming `W = R·V`, so a step
    costs about what a `Dense` head's does: B·d² + B·d·C multiply-adds.
    `layer.kernel` still returns W. It is an `OPTDense` with
    `units=num_classes` (and so a `keras.layers.Dense`).

    With `save_basis=False`, `.keras` files and weight checkpoints
    (`.weights.h5`, `BackupAndRestore`) store only P (and the bias): size ∝ d², not d·C. The
    prototypes are regenerated from the seed of `basis_initializer` when the
    model is loaded; the default initializer then gets a seed drawn at
    construction, saved in the config. This relies on Keras's seeded
    (stateless) random draws giving the same values for the same seed and
    shape, which holds on one backend across processes and devices.

    Which class gets which prototype does not change their energy, but in a
    low feature dimension it decides which classes share a boundary:
    `assign_prototypes` gives classes that are alike prototypes that are
    alike (measured with 2-D features in docs/results.md, CLS-OPT).

    No bias and no gain by default (`use_bias=False`, `use_gain=False`,
    whatever the recipe), as the paper's z = xᵀ R V: a gain per class,
    g = exp(`log_gain`), multiplies the logits, so its gradient grows with
    them, and on the 2-D example it made training unstable (docs/recipes.md).

    Args:
        num_classes: Positive int, the number of classes C (logits).
        save_basis: Whether weight files store the prototypes V. With
            `False`, V is regenerated from the seeded `basis_initializer`.
        {{keras_arguments}}
        {{opt_arguments}}

    Input shape:
        2-D tensor `(batch_size, d)`.

    Output shape:
        2-D tensor `(batch_size, num_classes)`.

    Example:

    >>> head = keras_opt.layers.OPTClassifier(1000, save_basis=False)
    >>> logits = head(np.ones((2, 64)))
    >>> logits.shape
    TensorShape([2, 1000])
    >>> head.rotation_parameter.shape  # the trained P; V is (64, 1000)
    (64, 64)

    CLS-OPT on a plain backbone, with a Stiefel rotation:

    ```python
    features = keras.applications.ResNet50(include_top=False, pooling="avg")
    model = keras.Sequential([
        features,
        keras_opt.layers.OPTClassifier(10_575, orthogonalizer="ogd"),
    ])
    model.compile(
        optimizer=keras_opt.optimizers.StiefelSGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ```

    Reference:
        - [Liu et al., 2021](https://arxiv.org/abs/2004.04690),
          Orthogonal Over-Parameterized Training, CVPR 2021.
    """

    def __init__(
        self,
        num_classes,
        activation=None,
        use_bias=False,
        save_basis=True,
        basis_initializer=None,
        use_gain=False,
        **kwargs,
    ):
        if (
            not isinstance(num_classes, int)
            or isinstance(num_classes, bool)
            or num_classes <= 0
        ):
            raise ValueError(
                "Invalid value for argument `num_classes`. Expected a "
                f"strictly positive int. Received: num_classes={num_classes!r}"
            )
        if basis_initializer is None:
            basis_initializer = initializers.MinimumEnergy(
                seed=random.randint(0, 2**31 - 1)
            )
        if not save_basis:
            basis_initializer = _seeded(basis_initializer, kwargs)
        super().__init__(
            num_classes,
            activation=activation,
            use_bias=use_bias,
            basis_initializer=basis_initializer,
            use_gain=use_gain,
            **kwargs,
        )
        self.save_basis = save_basis

    @property
    def num_classes(self):
        return self.units

    def call(self, inputs, training=None):
        if self.subspace_size is not None:
            return super().call(inputs, training=training)
        self._add_kernel_loss()
        if self.block_size is not None:
            outputs = blocks.times_rotation(self, inputs)
        else:
            rotation = self.orthogonalizer(self._map_input())
            rotation = ops.cast(rotation, self.compute_dtype)
            outputs = ops.matmul(inputs, rotation)
        outputs = ops.matmul(outputs, ops.cast(self.basis, self.compute_dtype))
        if self.log_gain is not None:
            gain = ops.exp(self.log_gain)
            outputs = outputs * ops.cast(gain, self.compute_dtype)
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def assign_prototypes(self, class_embeddings, num_starts=8, seed=0):
        """Gives classes that are alike prototypes that are alike.

        Permutes the columns of `basis` so that the class embeddings,
        rotated as a whole, lie near their classes' prototypes
        (`keras_opt.assignment.match_prototypes`). The prototypes' angles
        and energy do not change, only which class each serves. Call it
        once, after the layer is built and before training.

        Args:
            class_embeddings: `(num_classes, k)` array, one row per class,
                for example each class's mean input (any k).
            num_starts: Positive int, starts of the matching.
            seed: Int seed of the matching's random starts.

        Returns:
            The permutation, an int array `order`: class c now has the
            prototype that was column `order[c]`.
        """
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' must be built before its prototypes "
                "are assigned. Call it on an input (or `build`) first."
            )
        if not self.save_basis:
            raise ValueError(
                "`assign_prototypes` permutes the stored prototypes, but with "
                "`save_basis=False` they are regenerated from their seed when "
                "loaded and the permutation would be lost. Expected: "
                "`save_basis=True`. Received: save_basis=False"
            )
        basis = ops.convert_to_numpy(self.basis)
        order = assignment.match_prototypes(
            class_embeddings, basis, num_starts=num_starts, seed=seed
        )
        self.basis.assign(basis[:, order])
        return order

    def _saved_variables(self):
        variables = self._trainable_variables + self._non_trainable_variables
        if self.save_basis:
            return variables
        return [v for v in variables if v is not self.basis]

    def save_own_variables(self, store):
        # Without the prototypes when `save_basis=False`: regenerated from
        # the seeded initializer when the model is built again.
        for index, variable in enumerate(self._saved_variables()):
            store[str(index)] = variable

    def load_own_variables(self, store):
        variables = self._saved_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer '{self.name}' expected {len(variables)} variables "
                f"(save_basis={self.save_basis}), but received "
                f"{len(store.keys())} variables during loading. Expected: "
                f"{[v.name for v in variables]}"
            )
        for index, variable in enumerate(variables):
            variable.assign(store[str(index)])

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = config.pop("units")
        config["save_basis"] = self.save_basis
        return config


def _seeded(basis_initializer, kwargs):
    """The prototypes' initializer with `save_basis=False`: seeded."""
    if kwargs.get("subspace") is not None:
        raise ValueError(
            "`save_basis=False` regenerates the prototypes from a seed, but "
            "S-OPT merges its rotations into them. Expected: `subspace=None` "
            f"with `save_basis=False`. Received: subspace={kwargs['subspace']!r}"
        )
    if kwargs.get("trainable_basis"):
        raise ValueError(
            "`save_basis=False` regenerates the prototypes from a seed, so "
            "they cannot be trained. Expected: `trainable_basis=False`. "
            "Received: trainable_basis=True"
        )
    basis_initializer = keras.initializers.get(basis_initializer)
    if basis_initializer.get_config().get("seed") is None:
        raise ValueError(
            "`save_basis=False` regenerates the prototypes when the model is "
            "loaded, so their initializer needs a seed. Expected: a seeded "
            f"`basis_initializer`. Received: basis_initializer="
            f"{basis_initializer!r} with seed=None"
        )
    return basis_initializer
