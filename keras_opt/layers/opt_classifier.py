"""OPTClassifier: CLS-OPT, a head of fixed prototypes and a learned rotation."""

import random

import keras
from keras import ops

from keras_opt.layers import base_opt
from keras_opt.layers.base_opt import BaseOPT


@keras.saving.register_keras_serializable(package="keras_opt")
class OPTClassifier(BaseOPT):
    """Classifier head trained by OPT: CLS-OPT of the OPT paper.

    The logits are `z = x·R·V`: V (`basis`, shape `(d, num_classes)`) holds
    one random class prototype per column, drawn once and frozen; R
    (`rotation`, `(d, d)`) is a learned orthogonal matrix made by the
    orthogonalizer from the trainable `rotation_parameter` P. The head learns
    d(d−1)/2 parameters instead of the d·C of a `Dense` classifier, and the
    prototypes keep the pairwise angles of their random start: near-uniform
    on the sphere. Use it for very many classes (the paper: ImageNet-1k,
    10,575 face identities); it is tested up to C = 100,000 at d = 512.

    The product is computed as `(x·R)·V`, never forming `W = R·V`, so a step
    costs about what a `Dense` head's does: B·d² + B·d·C multiply-adds.
    `layer.kernel` still returns W.

    With `save_basis=False`, `.keras` files and weight checkpoints
    (`.weights.h5`, `BackupAndRestore`) store only P (and the bias): size ∝ d², not d·C. The
    prototypes are regenerated from the seed of `basis_initializer` when the
    model is loaded; the default initializer then gets a seed drawn at
    construction, saved in the config. This relies on Keras's seeded
    (stateless) random draws giving the same values for the same seed and
    shape, which holds on one backend across processes and devices.

    No bias by default (`use_bias=False`), as the paper's z = xᵀ R V.

    Args:
        num_classes: Positive int, the number of classes C (logits).
        save_basis: Whether weight files store the prototypes V. With
            `False`, V is regenerated from the seeded `basis_initializer`.
        {{base_opt_keyword_args}}

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
        basis_initializer=None,
        bias_initializer="zeros",
        rotation_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        bias_constraint=None,
        orthogonalizer="gram_schmidt",
        rotation_initializer=None,
        trainable_basis=False,
        save_basis=True,
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
        if not save_basis:
            if kwargs.get("subspace") is not None:
                raise ValueError(
                    "`save_basis=False` regenerates the prototypes from a "
                    "seed, but S-OPT merges its rotations into them. "
                    "Expected: `subspace=None` with `save_basis=False`. "
                    f"Received: subspace={kwargs['subspace']!r}"
                )
            if trainable_basis:
                raise ValueError(
                    "`save_basis=False` regenerates the prototypes from a "
                    "seed, so they cannot be trained. Expected: "
                    "`trainable_basis=False`. Received: trainable_basis=True"
                )
            if basis_initializer is None:
                basis_initializer = keras.initializers.VarianceScaling(
                    scale=2.0,
                    mode="fan_in",
                    distribution="untruncated_normal",
                    seed=random.randint(0, 2**31 - 1),
                )
            else:
                basis_initializer = keras.initializers.get(basis_initializer)
                if basis_initializer.get_config().get("seed") is None:
                    raise ValueError(
                        "`save_basis=False` regenerates the prototypes when "
                        "the model is loaded, so their initializer needs a "
                        "seed. Expected: a seeded `basis_initializer`. "
                        f"Received: basis_initializer={basis_initializer!r} "
                        "with seed=None"
                    )
        super().__init__(
            activation=activation,
            use_bias=use_bias,
            basis_initializer=basis_initializer,
            bias_initializer=bias_initializer,
            rotation_regularizer=rotation_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            bias_constraint=bias_constraint,
            orthogonalizer=orthogonalizer,
            rotation_initializer=rotation_initializer,
            trainable_basis=trainable_basis,
            **kwargs,
        )
        self.num_classes = num_classes
        self.save_basis = save_basis
        self.input_spec = keras.InputSpec(ndim=2)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                "The last dimension of the inputs to "
                f"{self.__class__.__name__} must be known at build time: it is the feature dimension d "
                "of the rotation. Expected: an int. Received: input_shape="
                f"{tuple(input_shape)}"
            )
        self._build_opt_weights(
            input_dim, self.num_classes, (input_dim, self.num_classes)
        )
        self.input_spec = keras.InputSpec(ndim=2, axes={-1: input_dim})

    def call(self, inputs):
        if self.subspace_size is None:
            rotation = self.orthogonalizer(self.rotation_parameter)
            rotated = ops.matmul(inputs, ops.cast(rotation, self.compute_dtype))
            basis = ops.cast(self.basis, self.compute_dtype)
            outputs = ops.matmul(rotated, basis)
            if self.log_gain is not None:
                gain = ops.exp(ops.cast(self.log_gain, self.compute_dtype))
                outputs = ops.multiply(outputs, gain)
        else:
            kernel = ops.cast(self._compute_kernel(), self.compute_dtype)
            outputs = ops.matmul(inputs, kernel)
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self._activate(outputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def _build_kernel_cache(self):
        # `call` never forms W = R·V (d·C entries), so there is nothing to
        # cache, and copies of V and W would triple the head's memory.
        self._cache_variables = ()

    def _saved_variables(self):
        variables = super()._saved_variables()
        if self.save_basis:
            return variables
        return [v for v in variables if v is not self.basis]

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
        config.update(
            {"num_classes": self.num_classes, "save_basis": self.save_basis}
        )
        return config


OPTClassifier.__doc__ = OPTClassifier.__doc__.replace(
    "{{base_opt_keyword_args}}", base_opt.base_opt_keyword_args
)
