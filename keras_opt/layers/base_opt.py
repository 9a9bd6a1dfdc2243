"""The OPT kernel, W = R·V·diag(g), on Keras's own kernel seam."""

import math

import keras
from keras import ops

from keras_opt import orthogonalizers
from keras_opt import recipes
from keras_opt import regularizers
from keras_opt.layers import _arguments
from keras_opt.layers import _rotation
from keras_opt.layers import blocks as blocks_lib
from keras_opt.layers import subspace as subspace_lib


def default_basis_initializer(seed=None):
    """He-normal N(0, 2/d), not truncated, as the official code draws V.

    Also the paper's initializer of plain layers (`keras_opt.baselines`).
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="untruncated_normal", seed=seed
    )


class BaseOPT:
    """Makes a Keras Dense or Conv layer an OPT layer, `W = R·V·diag(g)`.

    Mixed in before the stock layer (`class OPTDense(BaseOPT,
    keras.layers.Dense)`), it replaces the kernel variable by the OPT
    weights and returns the kernel they make from the `kernel` property,
    the seam Keras's own LoRA uses: `call`, output shapes, argument checks
    and the stock config are Keras's. The weights are

    - `rotation_parameter` P, trainable: R = `orthogonalizer(P)` is an
      orthogonal `(d, d)` matrix shared by all neurons (for OGD P is R);
    - `basis` V, `(d, n)`, the n neurons of fan-in d, drawn once, frozen;
    - `log_gain`, `(n,)` when `use_gain`: g = exp(`log_gain`);
    - the stock `bias`.

    Nothing else is kept: W is computed from these variables at every call
    (`keras_opt.fold` gives a stock model that serves without the map). The
    linear algebra runs in float32 (float64 under a float64 policy); W is
    then cast to the compute dtype. Since R is orthogonal, the angles
    between neurons, and the layer's hyperspherical energy, never change.

    With `subspace=p` (S-OPT) only a random p-dimensional coordinate
    subspace of the fan-in is rotated per episode; see
    `keras_opt.layers.subspace`. With `block_size=b`, R is block-diagonal
    on a fixed permutation of the fan-in; see `keras_opt.layers.blocks`.
    """

    def __init__(
        self,
        *args,
        orthogonalizer="gram_schmidt",
        basis_initializer=None,
        rotation_initializer=None,
        rotation_regularizer=None,
        use_gain=None,
        trainable_basis=False,
        recipe="default",
        subspace=None,
        subspace_seed=None,
        block_size=None,
        block_seed=None,
        **kwargs,
    ):
        _arguments.check_stock_arguments(self, super().__init__, args, kwargs)
        super().__init__(*args, **kwargs)
        recipe = recipes.get(recipe)
        self.orthogonalizer = recipe.orient(
            _rotation.get_orthogonalizer(orthogonalizer)
        )
        self.recipe = recipe.name
        self.use_gain = _arguments.use_gain(recipe, use_gain)
        self.basis_initializer = keras.initializers.get(
            basis_initializer or default_basis_initializer()
        )
        if rotation_initializer is None:
            rotation_initializer = recipe.rotation_initializer(
                self.orthogonalizer
            )
            if subspace is not None:
                rotation_initializer = "identity"
        self.rotation_initializer = keras.initializers.get(
            rotation_initializer
        )
        self.rotation_regularizer = regularizers.get(rotation_regularizer)
        self.trainable_basis = trainable_basis
        self.subspace, self.subspace_seed = subspace_lib.check_arguments(
            subspace, subspace_seed, trainable_basis
        )
        self.subspace_size = None
        self.block_size, self.block_seed = blocks_lib.check_arguments(
            block_size, block_seed, subspace
        )
        self.block_layout = None
        self._recipe = recipe
        self.supports_jit = self.orthogonalizer.supports_jit
        self._kernel_of_call = None

    def build(self, input_shape):
        kernel_shape = self._build_kernel_shape(input_shape)
        fan_in, units = math.prod(kernel_shape[:-1]), kernel_shape[-1]
        self._kernel_shape = kernel_shape
        self.subspace_size = subspace_lib.size(self.subspace, fan_in)
        shape, initializer, regularizer = _rotation.spec(self, fan_in)
        self.rotation_parameter = self.add_weight(
            name="rotation_parameter",
            shape=shape,
            initializer=initializer,
            regularizer=regularizer,
            constraint=_rotation.constraint(self),
            autocast=False,
        )
        _rotation.tag(self)
        self.basis = self.add_weight(
            name="basis",
            shape=(fan_in, units),
            initializer=self.basis_initializer,
            trainable=self.trainable_basis,
            autocast=False,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.log_gain = None
        if self.use_gain:
            # Made after P, V and the bias, so that version 0.1 files load.
            self.log_gain = self.add_weight(
                name="log_gain",
                shape=(units,),
                initializer="zeros",
                autocast=False,
            )
        if self.subspace_size is not None:
            subspace_lib.build(self, fan_in)
        if self.block_size is not None:
            blocks_lib.build(self, fan_in)
        _rotation.check_orthogonalizer_output(self)

    def _map_input(self):
        """P as the map takes it; see `keras_opt.recipes.Recipe.map_input`."""
        p = ops.convert_to_tensor(self.rotation_parameter)
        return self._recipe.map_input(self.orthogonalizer, p)

    @property
    def rotation(self):
        """R, the orthogonal `(d, d)` matrix of the layer (float32).

        For S-OPT layers, the `(p, p)` rotation of the current subspace. For
        block layers, the d×d matrix `Πᵀ·diag(R₁, …, R_k)·Π`: a debugging
        view, which the layer itself never forms.
        """
        _check_built(self, "rotation")
        if self.block_size is not None:
            return blocks_lib.rotation(self)
        rotation = self.orthogonalizer(self._map_input())
        if isinstance(rotation, keras.Variable):
            return ops.copy(rotation)
        return rotation

    @property
    def gain(self):
        """The gains g of the neurons, `W = R·V·diag(g)`: `exp(log_gain)`."""
        _check_built(self, "gain")
        if self.log_gain is None:
            return ops.ones((self._kernel_shape[-1],), self.basis.dtype)
        return ops.exp(self.log_gain)

    @property
    def kernel(self):
        """W = R·V·diag(g) in the stock kernel layout and compute dtype.

        Computed from the variables at every access, in float32 (float64
        under a float64 policy), then cast to the compute dtype, as
        Keras's LoRA kernel is.
        """
        _check_built(self, "kernel")
        kernel = self._kernel_of_call
        if kernel is None:
            kernel = self._float_kernel()
        return ops.cast(kernel, self.compute_dtype)

    def _float_kernel(self):
        """W in the stock kernel layout, in the variables' dtype."""
        if self.block_size is not None:
            kernel = blocks_lib.kernel(self)
        elif self.subspace_size is None:
            kernel = self.orthogonalizer.rotate(self._map_input(), self.basis)
        else:
            kernel = subspace_lib.kernel(self)
        if self.log_gain is not None:
            kernel = kernel * ops.exp(self.log_gain)
        return ops.reshape(kernel, self._kernel_shape)

    def call(self, inputs, *args, **kwargs):
        if self.kernel_regularizer is None:
            return super().call(inputs, *args, **kwargs)
        # The stock call reads `kernel`: it gets the W the penalty used, held
        # only while the call runs, so the map is evaluated once.
        self._kernel_of_call = self._add_kernel_loss()
        try:
            return super().call(inputs, *args, **kwargs)
        finally:
            self._kernel_of_call = None

    def _add_kernel_loss(self):
        """Adds the penalty of W, if any, and returns that W (float)."""
        # A stock layer regularizes its kernel variable; this kernel is
        # computed, so its penalty is a loss of the call that uses it.
        if self.kernel_regularizer is None:
            return None
        kernel = self._float_kernel()
        self.add_loss(self.kernel_regularizer(kernel))
        return kernel

    def next_episode(self):
        """Ends an S-OPT episode (`keras_opt.layers.subspace`), or redraws
        the permutation of a block layer (`keras_opt.layers.blocks`)."""
        if self.block_size is not None:
            blocks_lib.next_episode(self)
        else:
            subspace_lib.next_episode(self)

    def save_own_variables(self, store):
        # The stock method writes the computed kernel; an OPT layer stores
        # its own variables, in creation order, as `keras.layers.Layer`.
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def enable_lora(self, *args, **kwargs):
        raise NotImplementedError(
            f"{self.__class__.__name__} has no LoRA: its kernel R·V is "
            "already a trained low-dimensional update of fixed neurons."
        )

    def quantize(self, mode=None, **kwargs):
        # The stock quantizers replace the kernel variable, which an OPT
        # layer does not have.
        raise NotImplementedError(
            f"Layer '{self.name}' cannot be quantized as an OPT layer. Fold "
            "the model first (`keras_opt.fold(model)`), then quantize the "
            f"stock model. Received: mode={mode!r}"
        )

    def get_config(self):
        config = super().get_config()
        for key in _arguments.STOCK_KERNEL_CONFIG_KEYS:
            config.pop(key, None)
        config.update(
            {
                "orthogonalizer": orthogonalizers.serialize(
                    self.orthogonalizer
                ),
                "basis_initializer": keras.initializers.serialize(
                    self.basis_initializer
                ),
                "rotation_initializer": keras.initializers.serialize(
                    self.rotation_initializer
                ),
                "rotation_regularizer": regularizers.serialize(
                    self.rotation_regularizer
                ),
                "use_gain": self.use_gain,
                "trainable_basis": self.trainable_basis,
                "recipe": self.recipe,
                "subspace": self.subspace,
                "subspace_seed": self.subspace_seed,
                "block_size": self.block_size,
                "block_seed": self.block_seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Version 0.1 wrote no recipe: its layers were the official ones.
        config.setdefault("recipe", "official")
        return super().from_config(config)


def _check_built(layer, name):
    if not layer.built:
        raise AttributeError(
            f"You must build the layer before accessing `{name}`."
        )
