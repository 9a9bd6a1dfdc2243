"""Orthogonalizers: how an OPT layer turns its `rotation_parameter` P into R.

Every method of the OPT paper is one string here, so every row of its tables
is one argument away:

| name | alias | R in the forward pass | P starts at (official code) |
|---|---|---|---|
| `"gram_schmidt"` | `"gs"` | Gram–Schmidt of the columns (rows) of P | I (N(0, 1)) |
| `"householder"` | `"hr"` | Householder QR factor of P | I (N(0, 1)) |
| `"lowdin"` | `"ls"` | polar factor P (PᵀP)^(-1/2) | I (N(0, 1)) |
| `"cayley"` | `"cp"` | (I + S)(I − S)^(-1), S = triu(P) − triu(P)ᵀ | 0 (N(0, 1)) |
| `"newton_schulz"` | | matmul-only polar approximation | I (N(0, 1)) |
| `"stiefel"` | `"ogd"` | P itself, kept orthogonal by a Stiefel optimizer | I (I) |
| `"penalty"` | `"or"` | P itself, plus β‖P Pᵀ − I‖_F in the loss | I (N(0, 1)) |
| `"unconstrained"` | `"upt"` | P itself | I (N(0, 1)) |

P starts at the map's identity point (`rotation_initializer`), and
Gram–Schmidt takes the columns of P; the official code's start
(`official_rotation_initializer`) and its rows are what OPT layers use with
`recipe="official"`.

An orthogonalizer object carries everything a method needs: the map
(`__call__`), the default initializer and regularizer of P, and whether P is
a Stiefel variable. Third parties subclass
`Orthogonalizer` and register the subclass with
`keras.saving.register_keras_serializable`; any callable `P -> R` is accepted
too and is wrapped in `FunctionOrthogonalizer`.
"""

import copy
import difflib
import math

import keras

from keras_opt import _registry
from keras_opt import linalg
from keras_opt import regularizers
from keras_opt._validation import check_number

__all__ = [
    "ALIASES",
    "ALL_OBJECTS",
    "ALL_OBJECTS_DICT",
    "Cayley",
    "FunctionOrthogonalizer",
    "GramSchmidt",
    "Householder",
    "Lowdin",
    "NewtonSchulz",
    "Orthogonalizer",
    "Penalty",
    "Stiefel",
    "Unconstrained",
    "deserialize",
    "get",
    "serialize",
]

# One gradient step moves R by c² times the map's derivative at its
# identity point. Gram–Schmidt's and Householder's read one triangle of dP
# once; Cayley's, 2·(dS) with S over both triangles, is 4× as large (c = ½);
# the polar factor's, skew(dP), half as large (c = √2).
_POLAR_FIRST_STEP_SCALE = math.sqrt(2.0)


@keras.saving.register_keras_serializable(package="keras_opt")
class Orthogonalizer:
    """Base class of the maps from a layer's rotation parameter P to R.

    Subclasses implement `__call__(matrix)`, which takes square matrices of
    shape `(..., d, d)` and returns matrices of the same shape and dtype,
    using `keras.ops` only, vectorized (no Python loop over d) and without
    state. Class attributes describe the method to the layers and tests:

    - `is_exact`: the output is orthogonal for every full-rank input;
    - `is_stiefel`: P is R itself and must be updated by a Stiefel
      optimizer (`keras_opt.optimizers.StiefelSGD`);
    - `supports_jit`: whether XLA compiles the map efficiently;
    - `first_step_scale`: the factor c for which `map(P₀ + c·(P − P₀))`,
      P₀ the identity point, moves R by one gradient step from P₀ as far
      as Gram–Schmidt does (`recipe="default"` applies it);
    - `is_scale_invariant`: whether `map(a·P) = map(P)` for a > 0 (per
      row for Gram–Schmidt), so that P's growth shrinks the map's steps;
      `None` when the map does not say. Under `recipe="default"`,
      `StiefelAdam` shrinks alike the steps of an exact map that declares
      `False` (`keras_opt.recipes`).

    Example:

    ```python
    @keras.saving.register_keras_serializable(package="my_package")
    class DampedCayley(keras_opt.orthogonalizers.Orthogonalizer):
        is_exact = True

        def __call__(self, matrix):
            return keras_opt.linalg.cayley(0.1 * matrix)

    layer = keras_opt.layers.OPTDense(8, orthogonalizer=DampedCayley())
    ```
    """

    is_exact = False
    is_stiefel = False
    supports_jit = True
    first_step_scale = 1.0
    is_scale_invariant = None

    def __call__(self, matrix):
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement `__call__(matrix)`."
        )

    @property
    def rotation_initializer(self):
        """The default initializer of P: the map's identity point.

        R starts at (or, for Householder with an even d, next to) the
        identity, where the map is best conditioned and R moves as fast as
        P: see "Recipes" in `keras_opt.layers.OPTDense`. Cayley's identity
        point is P = 0; every other map's is P = I.
        """
        return keras.initializers.Identity()

    @property
    def official_rotation_initializer(self):
        """The initializer of P in the official code: N(0, 1).

        OPT layers use it with `recipe="official"`.
        """
        return keras.initializers.RandomNormal(mean=0.0, stddev=1.0)

    @property
    def rotation_regularizer(self):
        """The regularizer of P that the method needs, or `None`.

        OPT layers add it to their `rotation_regularizer`, if any.
        """
        return None

    def rotate(self, matrix, basis):
        """Returns `self(matrix) @ basis`; subclasses may fuse the product.

        OPT layers compute their kernel with this method, so a subclass can
        avoid forming R, or exploit in its gradient that the basis has few
        columns.
        """
        return keras.ops.matmul(self(matrix), basis)

    def oriented(self, vectors):
        """The map that orthonormalizes the `vectors` of P, if it can choose.

        A map that orthonormalizes vectors of P and leaves their choice to
        the layer's recipe (`GramSchmidt(vectors=None)`) returns a copy
        that takes `vectors`, `"rows"` or `"columns"` (the recipe's
        `orthonormalized_vectors`); every other map returns itself.
        """
        del vectors
        return self

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _GuardedMap(Orthogonalizer):
    """A map whose gradient guards its divisions by a relative `epsilon`.

    Subclasses set `map_function`, a `keras_opt.linalg` map with an
    `epsilon` argument, and `rotate_function`, its fused `rotate`, if any.
    """

    is_exact = True
    is_scale_invariant = True
    rotate_function = None

    def __init__(self, epsilon=1e-6):
        self.epsilon = check_number(
            "epsilon", epsilon, low=0.0, high=1.0, high_inclusive=False
        )

    def __call__(self, matrix):
        return self.map_function(matrix, epsilon=self.epsilon)

    def rotate(self, matrix, basis):
        if self.rotate_function is None:
            return super().rotate(matrix, basis)
        return self.rotate_function(matrix, basis, epsilon=self.epsilon)

    def get_config(self):
        return {"epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="keras_opt")
class GramSchmidt(_GuardedMap):
    """Gram–Schmidt orthonormalization of the rows or columns of P (`"gs"`).

    See `keras_opt.linalg.gram_schmidt`. Scale-invariant: weight decay on P
    does not move R.

    The official code orthonormalizes the rows of P, which are the rows of
    R: one per input feature of the layer, since `x·W = x·R·V`. The columns
    of R meet the rows of the basis V instead. Both give every orthogonal
    R, and transposed they are one map, but they learn differently (see
    `keras_opt.recipes` and docs/recipes.md). The default recipe takes the
    columns, as Householder does; `recipe="official"` takes the rows.

    Args:
        epsilon: Relative guard of the gradient at rank-deficient P.
        vectors: `"rows"`, `"columns"` or `None`: which vectors of P are
            orthonormalized. `None` (the default) leaves the choice to the
            recipe of the OPT layer that uses the map (`oriented`); called
            on its own, such a map takes the rows.
    """

    def __init__(self, epsilon=1e-6, vectors=None):
        super().__init__(epsilon=epsilon)
        if vectors not in (None, "rows", "columns"):
            raise ValueError(
                "Invalid value for argument `vectors`. Expected one of "
                f"[None, 'rows', 'columns']. Received: vectors={vectors!r}"
            )
        self.vectors = vectors

    def __call__(self, matrix):
        return linalg.gram_schmidt(
            matrix, epsilon=self.epsilon, vectors=self.vectors or "rows"
        )

    def rotate(self, matrix, basis):
        return linalg.gram_schmidt_rotate(
            matrix, basis, epsilon=self.epsilon, vectors=self.vectors or "rows"
        )

    def oriented(self, vectors):
        if self.vectors is not None:
            return self
        oriented = copy.copy(self)
        oriented.vectors = vectors
        return oriented

    def get_config(self):
        return {**super().get_config(), "vectors": self.vectors}

    @classmethod
    def from_config(cls, config):
        # Configs of version 0.2 and before have no `vectors`: their maps
        # took the rows whatever the recipe.
        return cls(**{"vectors": "rows", **config})


@keras.saving.register_keras_serializable(package="keras_opt")
class Householder(_GuardedMap):
    """Householder QR factor of the columns of P (`"hr"`).

    See `keras_opt.linalg.householder`: the official sign convention, with a
    positive diagonal of the triangular factor except possibly the last.

    Args:
        epsilon: Relative guard of the gradient at rank-deficient P.
    """

    map_function = staticmethod(linalg.householder)
    rotate_function = staticmethod(linalg.householder_rotate)


@keras.saving.register_keras_serializable(package="keras_opt")
class Lowdin(_GuardedMap):
    """Löwdin symmetric orthogonalization `P (PᵀP)^(-1/2)` (`"ls"`).

    See `keras_opt.linalg.lowdin`: an SVD forward pass with the closed-form
    polar adjoint as gradient, exact at orthogonal P. On TensorFlow, XLA's
    SVD (a Jacobi iteration) did not finish one d = 576 call within 5
    minutes on CPU, and the XLA-friendly `P (PᵀP)^(-1/2)` from `eigh` is
    1.6e-4 from orthogonal at cond(P) = 1e3 in float32, so there layers
    using it have `supports_jit` false and Keras compiles their models
    without XLA. JAX's compiled SVD calls LAPACK (cuSOLVER on GPUs), and an
    uncompiled JAX step runs op by op (40× slower at d = 288), so on JAX it
    is true.

    Args:
        epsilon: Relative guard of `σ_i + σ_j` in the gradient.
    """

    supports_jit = keras.backend.backend() != "tensorflow"
    first_step_scale = _POLAR_FIRST_STEP_SCALE
    map_function = staticmethod(linalg.lowdin)


@keras.saving.register_keras_serializable(package="keras_opt")
class Cayley(Orthogonalizer):
    """Cayley transform of the skew part of the upper triangle of P (`"cp"`).

    See `keras_opt.linalg.cayley`. Not scale-invariant: weight decay on P
    pulls R towards the identity.
    """

    is_exact = True
    is_scale_invariant = False
    first_step_scale = 0.5

    def __call__(self, matrix):
        return linalg.cayley(matrix)

    def rotate(self, matrix, basis):
        return linalg.cayley_rotate(matrix, basis)

    @property
    def rotation_initializer(self):
        return keras.initializers.Zeros()


@keras.saving.register_keras_serializable(package="keras_opt")
class NewtonSchulz(Orthogonalizer):
    """Matmul-only approximation of the polar factor of P.

    See `keras_opt.linalg.newton_schulz`. With `num_iterations=None` the
    number of steps guarantees `max |RᵀR − I| <= tolerance` (plus float
    round-off) for every P with `cond(P) <= max_condition`.

    Args:
        num_iterations: A fixed number of steps, or `None` to derive it from
            `max_condition` and `tolerance`.
        max_condition: The largest condition number of P to converge for.
        tolerance: The orthogonality error to reach.
    """

    is_exact = True
    is_scale_invariant = True
    first_step_scale = _POLAR_FIRST_STEP_SCALE

    def __init__(self, num_iterations=None, max_condition=1e4, tolerance=1e-6):
        self.num_iterations = check_number(
            "num_iterations", num_iterations, "int", low=1, allow_none=True
        )
        self.max_condition = check_number(
            "max_condition", max_condition, low=1.0, high=math.inf,
            high_inclusive=False,
        )
        self.tolerance = check_number(
            "tolerance", tolerance, low=0.0, high=1.0, low_inclusive=False,
            high_inclusive=False,
        )

    def __call__(self, matrix):
        return linalg.newton_schulz(
            matrix,
            num_iterations=self.num_iterations,
            max_condition=self.max_condition,
            tolerance=self.tolerance,
        )

    def get_config(self):
        return {
            "num_iterations": self.num_iterations,
            "max_condition": self.max_condition,
            "tolerance": self.tolerance,
        }


class _IdentityMap(Orthogonalizer):
    def __call__(self, matrix):
        return keras.ops.convert_to_tensor(matrix)


@keras.saving.register_keras_serializable(package="keras_opt")
class Stiefel(_IdentityMap):
    """R is P itself, kept orthogonal by a Stiefel optimizer (`"ogd"`).

    This is the paper's OGD: no map in the forward pass, P (which
    holds R) starts at the identity and is tagged with
    `keras_opt.variable_tags.mark_stiefel`, so that `keras_opt.optimizers.StiefelSGD`
    or `StiefelAdam` update it on the Stiefel manifold. Other optimizers
    would train it as an unconstrained matrix (UPT) and warn about it.
    """

    is_stiefel = True

    @property
    def official_rotation_initializer(self):
        return keras.initializers.Identity()


@keras.saving.register_keras_serializable(package="keras_opt")
class Penalty(_IdentityMap):
    """R is P itself, pulled towards orthogonality by a penalty (`"or"`).

    Its `rotation_regularizer` is
    `keras_opt.regularizers.OrthogonalityPenalty(beta, squared, mode="rows")`,
    so the layer adds `beta · ‖P Pᵀ − I‖_F` to the loss. The official code
    uses the non-squared norm with `beta = 0.1`; the paper writes the squared
    norm, available with `squared=True`.

    Args:
        beta: The weight of the penalty.
        squared: Whether to penalize the squared Frobenius norm.
    """

    def __init__(self, beta=0.1, squared=False):
        self.beta = check_number(
            "beta", beta, low=0.0, high=math.inf, high_inclusive=False
        )
        if not isinstance(squared, bool):
            raise TypeError(
                "Invalid type for argument `squared`. Expected a bool. "
                f"Received: squared={squared!r}"
            )
        self.squared = squared

    @property
    def rotation_regularizer(self):
        return regularizers.OrthogonalityPenalty(
            self.beta, squared=self.squared, mode="rows"
        )

    def get_config(self):
        return {"beta": self.beta, "squared": self.squared}


@keras.saving.register_keras_serializable(package="keras_opt")
class Unconstrained(_IdentityMap):
    """R is P itself, unconstrained (`"upt"`).

    The paper's UPT ablation: over-parameterization without orthogonality.
    P starts at the identity like the other maps' P (at N(0, 1) with
    `recipe="official"`; the paper does not state UPT's initializer).
    """


@keras.saving.register_keras_serializable(package="keras_opt")
class FunctionOrthogonalizer(Orthogonalizer):
    """Wraps a plain callable `P -> R` as an orthogonalizer.

    P starts at the identity. To save a model that uses it, the
    function must be registered with `keras.saving.register_keras_serializable`.

    Args:
        function: A callable taking and returning `(..., d, d)` matrices.
    """

    def __init__(self, function):
        if isinstance(function, dict):
            function = keras.saving.deserialize_keras_object(function)
        if not callable(function):
            raise TypeError(
                "Invalid value for argument `function`. Expected a callable. "
                f"Received: function={function!r}"
            )
        self.function = function

    def __call__(self, matrix):
        return self.function(matrix)

    def get_config(self):
        return {
            "function": keras.saving.serialize_keras_object(self.function)
        }


ALL_OBJECTS = {
    GramSchmidt,
    Householder,
    Lowdin,
    Cayley,
    NewtonSchulz,
    Stiefel,
    Penalty,
    Unconstrained,
}

ALIASES = {
    "gram_schmidt": GramSchmidt,
    "gs": GramSchmidt,
    "householder": Householder,
    "hr": Householder,
    "lowdin": Lowdin,
    "ls": Lowdin,
    "cayley": Cayley,
    "cp": Cayley,
    "newton_schulz": NewtonSchulz,
    "stiefel": Stiefel,
    "ogd": Stiefel,
    "penalty": Penalty,
    "or": Penalty,
    "unconstrained": Unconstrained,
    "upt": Unconstrained,
}

ALL_OBJECTS_DICT = _registry.objects_dict(ALL_OBJECTS, ALIASES)
ALL_OBJECTS_DICT["FunctionOrthogonalizer"] = FunctionOrthogonalizer


def serialize(orthogonalizer):
    """Returns the config of an orthogonalizer, for `get` or `deserialize`."""
    return keras.saving.serialize_keras_object(orthogonalizer)


def deserialize(config, custom_objects=None):
    """Returns an orthogonalizer from the output of `serialize`."""
    return _registry.deserialize(config, ALL_OBJECTS_DICT, custom_objects)


def get(identifier):
    """Returns an orthogonalizer from a name, config, instance or callable.

    Args:
        identifier: `None`, one of the names in `ALIASES` (e.g.
            `"gram_schmidt"` or the paper's `"gs"`), a dict from
            `serialize`, an `Orthogonalizer` instance or class, or any
            callable `P -> R`.

    Returns:
        An `Orthogonalizer`, or `None` for `None`.

    Example:

    >>> keras_opt.orthogonalizers.get("gs")
    <keras_opt.orthogonalizers.GramSchmidt object at ...>
    """
    if identifier is None:
        return None
    if isinstance(identifier, Orthogonalizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in ALIASES:
            close = difflib.get_close_matches(key, ALIASES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                "Invalid value for argument `orthogonalizer`. Expected one of "
                f"{sorted(ALIASES)}, an Orthogonalizer or a callable.{hint} "
                f"Received: orthogonalizer={identifier!r}"
            )
        return ALIASES[key]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Orthogonalizer):
        return identifier()
    if callable(identifier):
        return FunctionOrthogonalizer(identifier)
    raise ValueError(
        "Could not interpret orthogonalizer identifier. Expected a name from "
        f"{sorted(ALIASES)}, a config dict, an Orthogonalizer or a callable. "
        f"Received: orthogonalizer={identifier!r}"
    )
