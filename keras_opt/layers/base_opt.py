"""The shared machinery of OPT layers: W = R·V with R = orthogonalizer(P)."""

import random
import textwrap

import keras
from keras import ops

from keras_opt import orthogonalizers
from keras_opt import regularizers
from keras_opt import variable_tags

_KERNEL_ARGUMENTS = {
    "kernel_initializer": "basis_initializer",
    "kernel_regularizer": "rotation_regularizer",
    "kernel_constraint": None,
    "lora_rank": None,
}


def default_basis_initializer():
    """He-normal N(0, 2/d), not truncated, as the official code draws V.

    Also the paper's initializer of plain layers (`keras_opt.baselines`).
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="untruncated_normal"
    )


def _orthogonalizer_argument():
    """The `orthogonalizer` entry of the Args, listing the registry."""
    names = {}
    for name, cls in orthogonalizers.ALIASES.items():
        names.setdefault(cls, []).append(f'`"{name}"`')
    choices = ", ".join(
        f"{first} ({', '.join(aliases)})" if aliases else first
        for first, *aliases in names.values()
    )
    return textwrap.fill(
        f"orthogonalizer: How R is made from P. One of {choices}, a "
        "`keras_opt.orthogonalizers.Orthogonalizer` or a callable P -> R. "
        'Defaults to `"gram_schmidt"`.',
        width=80,
        initial_indent=" " * 8,
        subsequent_indent=" " * 12,
        break_long_words=False,
        break_on_hyphens=False,
    ).lstrip()


# The arguments every OPT layer shares, for `{{base_opt_keyword_args}}` in
# the docstrings, after the layer's own arguments.
base_opt_keyword_args = (
    f"""activation: Activation function. Defaults to none (linear).
        use_bias: Whether the layer uses a bias vector.
        basis_initializer: Initializer of V. Defaults to He-normal N(0, 2/d),
            not truncated. Pass a seeded initializer for reproducible
            neurons, or a non-zero mean for the paper's initial-energy
            ablation.
        bias_initializer: Initializer of the bias.
        rotation_regularizer: Regularizer of the rotation parameter P: a
            Keras regularizer, or a `keras_opt.regularizers` name (such as
            `"srip"`), instance or config. It is added to the
            orthogonalizer's own regularizer (OR's `β‖P Pᵀ − I‖_F`), never
            replaces it; OR's β is set with `orthogonalizer=Penalty(beta)`.
        bias_regularizer: Regularizer applied to the bias.
        activity_regularizer: Regularizer applied to the output.
        bias_constraint: Constraint applied to the bias.
        {_orthogonalizer_argument()}
        rotation_initializer: Initializer of P. Defaults to the
            orthogonalizer's: its identity point (P = I; P = 0 for
            `"cayley"`), or with `recipe="official"` the official code's
            N(0, 1) (the identity for `"ogd"`).
        trainable_basis: Whether V is trained too (the paper's FN ablation).
        recipe: `"default"` or `"official"`. `"default"` starts P at the
            map's identity point and learns a gain per neuron (`log_gain`,
            starting at g = 1): `W = R·V·diag(g)`. `"official"` is the
            released code exactly: P ~ N(0, 1) (the identity for OGD) and no
            gain.
            See "Recipes" in `keras_opt.layers.BaseOPT`.
        subspace: S-OPT (stochastic OPT): the dimension p of the random
            coordinate subspace of the fan-in that is rotated, an int, or a
            float fraction of d (`0.25` for d/4, rounded). `None` (the
            default) for full OPT. See "S-OPT" in the class description.
        subspace_seed: Int seed of the subspace sampling. Defaults to one
            drawn at construction (saved in the config).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`."""
)


RECIPES = ("default", "official")


class _Shape:
    """Stands for a variable of this shape, float32, in `copy_of`."""

    def __init__(self, shape):
        self.shape = shape
        self.dtype = "float32"


class _SumOfRegularizers:
    """The sum of several regularizers of one variable."""

    def __init__(self, regularizers):
        self.regularizers = regularizers

    def __call__(self, x):
        return ops.sum(ops.stack([r(x) for r in self.regularizers]))


class BaseOPT(keras.layers.Layer):
    """Base class of the OPT layers, whose kernel is `W = R·V`.

    V (`basis`, shape `(d, n)`) holds the layer's n neurons of fan-in d, drawn
    at random once and frozen; R (`rotation`) is a d×d orthogonal matrix
    computed by an orthogonalizer from the trainable `rotation_parameter` P,
    and shared by all neurons. Since R is orthogonal, the angles between
    neurons, and so the layer's hyperspherical energy, never change during
    training. The linear algebra runs in float32 (or float64 under a float64
    policy) whatever the dtype policy; only W is cast to the compute dtype.

    `layer.kernel` returns W and `layer.rotation` returns R, both read-only
    and computed from the variables on every access. With
    `orthogonalizer="ogd"`, P is R itself, kept orthogonal by a Stiefel
    optimizer.

    Recipes. With `recipe="default"`, an OPT layer learns as fast as the
    layer it replaces, with every orthogonalizer and no per-task tuning:

    - P starts at the map's identity point (I; 0 for Cayley), so R starts
      at I and moves as fast as P. The official start P ~ N(0, 1) makes the
      scale-invariant maps (GS, HR, LS) move R by about lr/‖p_i‖² ≈ lr/d per
      step and sits Cayley far from its well-conditioned point.
    - A learned gain per neuron (`W = R·V·diag(g)`, g = exp(`log_gain`),
      starting at 1), as in weight normalization: V fixes every neuron's
      norm, so without it a network whose outputs come from OPT layers
      alone (a GCN) cannot scale its logits. A gain changes no angle
      between neurons: the hyperspherical energy (of the normalized
      neurons) and R are unaffected. (A single scalar gain per layer,
      tried first, made SGD with momentum 0.9 at lr 0.1 diverge on
      Fashion-MNIST: its gradient sums over every entry of W.)
    - No weight decay on P (decay on a scale-invariant P only rescales it,
      and with Adam it mutes the data gradient): `rotation_regularizer` is
      `None` unless you set it.
    - P is trained by the model's own optimizer at its learning rate; OGD's
      R by `StiefelSGD` at 0.2 × its learning rate (the official ratio) or
      `StiefelAdam` (see their docs).

    `docs/results.md` has the measurements behind these choices (Cora and
    Fashion-MNIST, several seeds, against the plain network).
    `recipe="official"` reproduces the released code (P ~ N(0, 1), no
    gain); add `rotation_regularizer=keras.regularizers.L2(2.5e-4)` for its
    weight decay on P.

    S-OPT: with `subspace=p`, only a random p-dimensional coordinate
    subspace I of the fan-in is rotated per episode: P (and R) are p×p,
    start at the identity, and `W = V` with rows I replaced by `R·V[I]`
    (a gather and a scatter; memory and time grow with p², not d²).
    `layer.next_episode()` ends an episode: it merges R into V
    (V[I] ← R·V[I]), samples the next I and resets P to the identity, so
    the layer's function is unchanged. `layer.subspace_indices`,
    `layer.subspace_episode` and the seed are non-trainable int weights:
    the draw of I depends only on (seed, episode), and is the same on every
    replica and after a resume. Drive the episodes with
    `keras_opt.callbacks.SubspaceEpisodes(every_n_steps=750)`, which also
    resets the optimizer state of P (`keras_opt.optimizers.reset_slots`).
    `layer.subspace_size` is p once the layer is built.

    Subclasses call `_build_opt_weights(fan_in, units, kernel_shape)` in
    `build` and use `self._compute_kernel()` in `call`.

    Args:
        {{base_opt_keyword_args}}
    """

    def __init__(
        self,
        activation=None,
        use_bias=True,
        basis_initializer=None,
        bias_initializer="zeros",
        rotation_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        bias_constraint=None,
        orthogonalizer="gram_schmidt",
        rotation_initializer=None,
        trainable_basis=False,
        recipe="default",
        subspace=None,
        subspace_seed=None,
        **kwargs,
    ):
        for argument, replacement in _KERNEL_ARGUMENTS.items():
            if argument in kwargs:
                hint = (
                    f" Use `{replacement}` instead."
                    if replacement
                    else " It has no counterpart here."
                )
                raise TypeError(
                    f"{self.__class__.__name__} has no argument `{argument}`: "
                    "its kernel is computed as W = R·V from a `rotation` and "
                    f"a fixed `basis`.{hint} Received: "
                    f"{argument}={kwargs[argument]!r}"
                )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if orthogonalizer is None:
            raise ValueError(
                "Invalid value for argument `orthogonalizer`. Expected one of "
                f"{sorted(orthogonalizers.ALIASES)}, an Orthogonalizer or a "
                "callable. Received: orthogonalizer=None"
            )
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.basis_initializer = keras.initializers.get(
            basis_initializer or default_basis_initializer()
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.rotation_regularizer = regularizers.get(rotation_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.orthogonalizer = orthogonalizers.get(orthogonalizer)
        if subspace is not None:
            _check_subspace(subspace)
            if trainable_basis:
                raise ValueError(
                    "S-OPT merges its rotation into the fixed basis V, so V "
                    "cannot be trained. Expected: `trainable_basis=False` "
                    f"with `subspace`. Received: subspace={subspace!r}, "
                    "trainable_basis=True"
                )
            if rotation_initializer is None:
                rotation_initializer = "identity"
            if subspace_seed is None:
                subspace_seed = random.randint(0, 2**31 - 1)
        if recipe not in RECIPES:
            raise ValueError(
                "Invalid value for argument `recipe`. Expected one of "
                f"{list(RECIPES)}. Received: recipe={recipe!r}"
            )
        self.recipe = recipe
        if rotation_initializer is None:
            rotation_initializer = (
                self.orthogonalizer.official_rotation_initializer
                if recipe == "official"
                else self.orthogonalizer.rotation_initializer
            )
        self.rotation_initializer = keras.initializers.get(
            rotation_initializer
        )
        self.trainable_basis = trainable_basis
        self.subspace = subspace
        self.subspace_seed = subspace_seed
        self.subspace_size = None
        self.supports_jit = self.orthogonalizer.supports_jit

    def _build_opt_weights(self, fan_in, units, kernel_shape):
        self._kernel_shape = tuple(kernel_shape)
        if self.subspace is not None:
            self.subspace_size = _subspace_size(self.subspace, fan_in)
        size = self.subspace_size or fan_in
        losses = [
            regularizer
            for regularizer in (
                self.rotation_regularizer,
                self.orthogonalizer.rotation_regularizer,
            )
            if regularizer is not None
        ]
        rotation_loss = losses[0] if len(losses) == 1 else None
        if len(losses) > 1:
            rotation_loss = _SumOfRegularizers(losses)
        is_stiefel = self.orthogonalizer.is_stiefel
        self.rotation_parameter = self.add_weight(
            name="rotation_parameter",
            shape=(size, size),
            initializer=self.rotation_initializer,
            regularizer=rotation_loss,
            constraint=variable_tags.StiefelGuard() if is_stiefel else None,
            autocast=False,
        )
        if is_stiefel:
            variable_tags.mark_stiefel(self.rotation_parameter)
        self.basis = self.add_weight(
            name="basis",
            shape=(fan_in, units),
            initializer=self.basis_initializer,
            trainable=self.trainable_basis,
            autocast=False,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.log_gain = None
        if self.recipe == "default":
            # Made after P, V and the bias, so that version 0.1 files load.
            self.log_gain = self.add_weight(
                name="log_gain",
                shape=(units,),
                initializer="zeros",
                autocast=False,
            )
        if self.subspace_size is not None:
            self._build_subspace_weights(fan_in)
        self._build_kernel_cache()
        if type(self.orthogonalizer) not in orthogonalizers.ALL_OBJECTS:
            rotation = self.orthogonalizer(self.rotation_parameter)
            if tuple(rotation.shape) != (size, size):
                raise ValueError(
                    f"The orthogonalizer of layer '{self.name}' must return a "
                    f"matrix of the rotation's shape. Expected: "
                    f"{(size, size)}. Received: shape="
                    f"{tuple(rotation.shape)} from "
                    f"orthogonalizer={self.orthogonalizer!r}"
                )

    @property
    def rotation(self):
        """The orthogonal matrix `R = orthogonalizer(P)`, `(d, d)`, float32.

        For S-OPT layers, the p×p rotation of the current subspace.
        """
        if not self.built:
            raise AttributeError(
                "You must build the layer before accessing `rotation`."
            )
        rotation = self.orthogonalizer(self.rotation_parameter)
        if isinstance(rotation, keras.Variable):
            # The identity maps (OGD, OR, UPT) return P itself; R is a value.
            rotation = ops.copy(rotation)
        return rotation

    @property
    def gain(self):
        """The gains g of the neurons, `W = R·V·diag(g)`: `exp(log_gain)`."""
        if self.log_gain is None:
            return ops.ones((self._kernel_shape[-1],), "float32")
        return ops.exp(self.log_gain)

    @property
    def kernel(self):
        """The effective kernel `W = R·V` in the Keras layout, in float32."""
        if not self.built:
            raise AttributeError(
                "You must build the layer before accessing `kernel`."
            )
        return self._compute_kernel()

    def _compute_kernel(self):
        kernel = self._rotated_basis()
        if self.log_gain is not None:
            kernel = kernel * ops.exp(ops.cast(self.log_gain, kernel.dtype))
        return ops.reshape(kernel, self._kernel_shape)

    def _kernel_variables(self):
        """The variables W depends on, for the inference cache."""
        variables = [self.rotation_parameter, self.basis]
        if self.log_gain is not None:
            variables.append(self.log_gain)
        if self.subspace_size is not None:
            variables.append(self.subspace_indices)
        return variables

    def _build_kernel_cache(self):
        # Inference (`training=False`: predict, evaluate) reuses W while
        # the variables it depends on are unchanged, which an exact
        # comparison with copies of them decides at every call (O(d²)
        # against the O(d³) map). The copies are not saved.
        def copy_of(name, variable):
            return self.add_weight(
                name=f"{name}_cache",
                shape=variable.shape,
                dtype=variable.dtype,
                initializer="zeros",
                trainable=False,
                autocast=False,
                aggregation="only_first_replica",
            )

        self._cached_inputs = [
            copy_of(variable.name, variable)
            for variable in self._kernel_variables()
        ]
        self._cached_kernel = copy_of("kernel", _Shape(self._kernel_shape))
        self._cache_is_valid = self.add_weight(
            name="kernel_cache_is_valid",
            shape=(),
            dtype="bool",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        self._cache_variables = self._cached_inputs + [
            self._cached_kernel,
            self._cache_is_valid,
        ]

    def _kernel_for_call(self, training=None):
        """W for `call`: recomputed, or from the cache when `training=False`.

        Only an explicit `training=False` (as `predict` and `evaluate` pass)
        uses the cache, so a gradient always flows through the map.
        """
        if training is not False:
            return self._compute_kernel()
        inputs = [ops.convert_to_tensor(v) for v in self._kernel_variables()]
        unchanged = ops.convert_to_tensor(self._cache_is_valid)
        for value, copy in zip(inputs, self._cached_inputs):
            unchanged = ops.logical_and(
                unchanged, ops.all(ops.equal(value, copy))
            )
        kernel = ops.cond(
            unchanged,
            lambda: ops.convert_to_tensor(self._cached_kernel),
            self._compute_kernel,
        )
        for value, copy in zip(inputs, self._cached_inputs):
            copy.assign(value)
        self._cached_kernel.assign(kernel)
        self._cache_is_valid.assign(True)
        return kernel

    def _saved_variables(self):
        cache = {id(v) for v in getattr(self, "_cache_variables", ())}
        return [
            v
            for v in self._trainable_variables + self._non_trainable_variables
            if id(v) not in cache
        ]

    def save_own_variables(self, store):
        # As `Layer.save_own_variables`, without the inference cache.
        for index, variable in enumerate(self._saved_variables()):
            store[f"{index}"] = variable

    def load_own_variables(self, store):
        variables = self._saved_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer '{self.name}' expected {len(variables)} variables, "
                f"but received {len(store.keys())} variables during loading. "
                f"Expected: {[v.name for v in variables]}"
            )
        for index, variable in enumerate(variables):
            variable.assign(store[f"{index}"])
        self._cache_is_valid.assign(False)

    def _rotated_basis(self):
        """`R·V` (S-OPT: V with rows I rotated), before any gain."""
        if self.subspace_size is None:
            return self.orthogonalizer.rotate(
                self.rotation_parameter, self.basis
            )
        return self._subspace_kernel()

    def _build_subspace_weights(self, fan_in):
        self._fan_in = fan_in
        # Created after P, V and the bias, so files of full-OPT layers load.
        self.subspace_seed_variable = self.add_weight(
            name="subspace_seed",
            shape=(),
            dtype="int32",
            initializer=keras.initializers.Constant(self.subspace_seed),
            trainable=False,
            autocast=False,
        )
        self.subspace_episode = self.add_weight(
            name="subspace_episode",
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            autocast=False,
        )
        self.subspace_indices = self.add_weight(
            name="subspace_indices",
            shape=(self.subspace_size,),
            dtype="int32",
            initializer=lambda shape, dtype: self._sample_indices(
                self.subspace_seed, 0
            ),
            trainable=False,
            autocast=False,
        )

    def _sample_indices(self, seed, episode):
        # Stateless: the indices depend on (seed, episode) only, so every
        # replica, and every resumed run, draws the same set.
        seed = (int(seed) * 1_000_003 + int(episode)) % (2**31 - 1)
        order = keras.random.shuffle(
            ops.arange(self._fan_in, dtype="int32"), seed=seed
        )
        return ops.sort(order[: self.subspace_size])

    def _subspace_kernel(self):
        indices = ops.convert_to_tensor(self.subspace_indices)
        basis = ops.convert_to_tensor(self.basis)
        rows = ops.take(basis, indices, axis=0)
        rotated = self.orthogonalizer.rotate(self.rotation_parameter, rows)
        return ops.scatter_update(
            basis, ops.expand_dims(indices, 1), ops.cast(rotated, basis.dtype)
        )

    def next_episode(self):
        """Ends the S-OPT episode: merge, resample, reset (see the class doc).

        Merges the rotation into the basis, V ← W (only the rows I change:
        V[I] ← R̃·V[I]), then samples the next index set I from the seed and
        the incremented episode counter and resets P̃ to the identity, so
        the layer computes the same function before and after. (Where the
        orthogonalizer's φ(I) is not I, as Householder's for even p, the
        new rows are stored as φ(I)ᵀ·W[I'], which keeps W too.) The
        optimizer state of P̃ is not the layer's: reset it with
        `keras_opt.optimizers.reset_slots`, or use
        `keras_opt.callbacks.next_subspace_episode` / `SubspaceEpisodes`,
        which do both. Call it between steps, outside a `tf.function`.
        """
        if self.subspace_size is None:
            raise ValueError(
                f"Layer '{self.name}' has no subspace episodes: it is a full "
                "OPT layer. Expected: a built layer with `subspace` set. "
                f"Received: subspace={self.subspace!r}, built={self.built}"
            )
        identity = ops.eye(
            self.subspace_size, dtype=self.rotation_parameter.dtype
        )
        basis = self._subspace_kernel()
        episode = int(ops.convert_to_numpy(self.subspace_episode)) + 1
        seed = int(ops.convert_to_numpy(self.subspace_seed_variable))
        indices = self._sample_indices(seed, episode)
        reset_rotation = ops.convert_to_numpy(self.orthogonalizer(identity))
        if not (reset_rotation == ops.convert_to_numpy(identity)).all():
            # φ(I) is not I (Householder's, a reflection for even p): store
            # φ(I)ᵀ W[I'] in the new rows, so that W stays W once P̃ = I.
            rows = ops.take(basis, indices, axis=0)
            rows = ops.matmul(ops.transpose(reset_rotation), rows)
            basis = ops.scatter_update(
                basis, ops.expand_dims(indices, 1), ops.cast(rows, basis.dtype)
            )
        self.basis.assign(basis)
        self.subspace_episode.assign(episode)
        self.subspace_indices.assign(indices)
        self.rotation_parameter.assign(identity)

    def _activate(self, outputs):
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "basis_initializer": keras.initializers.serialize(
                    self.basis_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "rotation_regularizer": regularizers.serialize(
                    self.rotation_regularizer
                ),
                "bias_regularizer": keras.regularizers.serialize(
                    self.bias_regularizer
                ),
                "activity_regularizer": keras.regularizers.serialize(
                    self.activity_regularizer
                ),
                "bias_constraint": keras.constraints.serialize(
                    self.bias_constraint
                ),
                "orthogonalizer": orthogonalizers.serialize(
                    self.orthogonalizer
                ),
                "rotation_initializer": keras.initializers.serialize(
                    self.rotation_initializer
                ),
                "trainable_basis": self.trainable_basis,
                "recipe": self.recipe,
                "subspace": self.subspace,
                "subspace_seed": self.subspace_seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Version 0.1 wrote no recipe: its layers were the official ones.
        config.setdefault("recipe", "official")
        return super().from_config(config)


def _check_subspace(subspace):
    is_int = isinstance(subspace, int) and not isinstance(subspace, bool)
    if not is_int and not isinstance(subspace, float):
        raise TypeError(
            "Invalid type for argument `subspace`. Expected None, a positive "
            "int p or a float fraction of d in (0, 1]. Received: "
            f"subspace={subspace!r} of type {type(subspace).__name__}"
        )
    if (is_int and subspace < 1) or (
        not is_int and not 0.0 < subspace <= 1.0
    ):
        raise ValueError(
            "Invalid value for argument `subspace`. Expected None, a "
            "positive int p or a float fraction of d in (0, 1]. Received: "
            f"subspace={subspace!r}"
        )


def _subspace_size(subspace, fan_in):
    if isinstance(subspace, float):
        return min(fan_in, max(1, round(subspace * fan_in)))
    if subspace > fan_in:
        raise ValueError(
            "Invalid value for argument `subspace`. Expected at most the "
            f"fan-in d = {fan_in} of the layer. Received: subspace={subspace}"
        )
    return subspace


BaseOPT.__doc__ = BaseOPT.__doc__.replace(
    "{{base_opt_keyword_args}}", base_opt_keyword_args
)
