"""Recipes: how an OPT layer starts and how its rotation is trained.

A recipe is a preset of the choices that make an OPT layer learn, defined
here once and read by the layers (`recipe=` of every OPT layer), by the
networks of `keras_opt.models` and by the example scripts (`--recipe`):

| | `"default"` | `"official"` (the released code) |
|---|---|---|
| P starts at | the map's identity point (R = I) | N(0, 1) (the identity for OGD) |
| Gram–Schmidt orthonormalizes | the columns of P (V's side), as Householder does | the rows of P (the inputs' side) |
| per-neuron gain `W = R·V·diag(g)` | yes (`use_gain=True`) | no |
| first step of every exact map | moves R as far as Gram–Schmidt's | as the map's definition gives |
| weight decay on P | none | the model's (`rotation_weight_decay`) |
| OGD rotation learning rate | 0.2 × lr (StiefelSGD), 10 × lr (StiefelAdam) | the same |
| `StiefelAdam`'s step on the P of an exact map | OGD's: one second moment ‖G‖²_F; R's step at most the rotation learning rate | Adam's |

Why each choice is made, with the measurements, is in `docs/recipes.md`.

Example:

>>> recipe = keras_opt.recipes.get("official")
>>> recipe.use_gain
False
"""

import math

import keras

__all__ = ["DEFAULT", "OFFICIAL", "Recipe", "get", "names", "official_l2"]


class Recipe:
    """A preset of an OPT layer's start and of its rotation's training.

    Args:
        name: The recipe's name.
        identity_start: Whether P starts at the orthogonalizer's identity
            point (`rotation_initializer`) rather than at the official
            code's start (`official_rotation_initializer`).
        use_gain: Whether OPT layers learn one gain per neuron.
        equal_first_step: Whether P enters the map as
            `P₀ + c·(P − P₀)`, with P₀ the identity point and c the map's
            `first_step_scale`, so that one gradient step from P₀ moves R
            by the same amount for every exact map. `R = map(P)` otherwise.
        decays_rotation: Whether a network's weight decay applies to P.
        rotation_learning_rate_factors: The rotation learning rate of the
            Stiefel optimizers (OGD) as a multiple of their learning rate,
            by optimizer class name.
        orthonormalized_vectors: `"columns"` or `"rows"`: which vectors of
            P a map that leaves the choice to the recipe orthonormalizes
            (`GramSchmidt(vectors=None)`, `orient`). The rows of R meet the
            layer's inputs, its columns the rows of the basis V; under SGD
            Gram–Schmidt learned faster on the columns (docs/recipes.md,
            item 7).
        adam_steps_like_ogd: Whether `StiefelAdam` steps the P of an exact
            map as Cayley Adam steps OGD's R: Adam's first moment over one
            shared scale, the root of the running mean of ‖G‖²_F, at the
            rotation learning rate over the map's stretch of P's step
            (`rotation_step_scale`), so that R's step is at most the
            rotation learning rate, as OGD's is (`steps_like_ogd`,
            `variable_tags.mark_rotation_step`). Adam's per-entry scale
            moves each of P's d² entries by about lr even when its gradient
            is noise, and Gram–Schmidt's backward pass gives every entry
            some gradient: on Cora the first layer's W kept changing by
            about 20 % a step to the end of training (docs/recipes.md,
            item 8). Takes precedence over `shrinks_adam_steps`.
        shrinks_adam_steps: Whether `StiefelAdam` shrinks the steps of the
            P of an exact map that is not scale-invariant (Cayley) as a
            scale-invariant map's steps shrink: Adam moves each entry of P
            by about lr, so a row of d entries of a scale-invariant P grows
            by about d·lr² in squared norm per step and its step on R
            shrinks as 1/√(1 + t·d·lr²) after t steps; P's learning rate
            gets that factor (`damps_step`).
    """

    def __init__(
        self,
        name,
        identity_start,
        use_gain,
        equal_first_step,
        decays_rotation,
        rotation_learning_rate_factors,
        orthonormalized_vectors="rows",
        shrinks_adam_steps=False,
        adam_steps_like_ogd=False,
    ):
        self.name = name
        self.identity_start = identity_start
        self.use_gain = use_gain
        self.equal_first_step = equal_first_step
        self.decays_rotation = decays_rotation
        self.rotation_learning_rate_factors = dict(
            rotation_learning_rate_factors
        )
        self.orthonormalized_vectors = orthonormalized_vectors
        self.shrinks_adam_steps = shrinks_adam_steps
        self.adam_steps_like_ogd = adam_steps_like_ogd

    def orient(self, orthogonalizer):
        """`orthogonalizer`, taking this recipe's `orthonormalized_vectors`.

        Only a map that leaves the choice open changes (see
        `keras_opt.orthogonalizers.Orthogonalizer.oriented`).
        """
        return orthogonalizer.oriented(self.orthonormalized_vectors)

    def rotation_initializer(self, orthogonalizer):
        """The initializer of P for `orthogonalizer` under this recipe."""
        if self.identity_start:
            return orthogonalizer.rotation_initializer
        return orthogonalizer.official_rotation_initializer

    def first_step_scale(self, orthogonalizer):
        """The factor c of `P₀ + c·(P − P₀)` for `orthogonalizer`."""
        if not self.equal_first_step:
            return 1.0
        return float(getattr(orthogonalizer, "first_step_scale", 1.0))

    def map_input(self, orthogonalizer, p):
        """P as `orthogonalizer` takes it: `P₀ + c·(P − P₀)`, c its scale.

        c is the map's `first_step_scale` under `equal_first_step`, else 1
        (and P is returned as is). P may be a stack `(..., d, d)` of
        matrices (a block layer's); P₀ is then that of each.
        """
        scale = self.first_step_scale(orthogonalizer)
        if scale == 1.0:
            return p
        start = orthogonalizer.rotation_initializer(p.shape[-2:], p.dtype)
        return start + keras.ops.cast(scale, p.dtype) * (p - start)

    def rotation_regularizer(self, orthogonalizer, weight_decay):
        """The regularizer of P for a network trained with `weight_decay`.

        TF1's `l2_regularizer(wd)` (wd·‖P‖²/2), as the official code decays
        P; `None` for Stiefel rotations, without decay, or when the recipe
        does not decay P.
        """
        if not self.decays_rotation or orthogonalizer.is_stiefel:
            return None
        return official_l2(weight_decay)

    def steps_like_ogd(self, orthogonalizer):
        """Whether `StiefelAdam` steps `orthogonalizer`'s P as OGD's R."""
        return (
            self.adam_steps_like_ogd
            and getattr(orthogonalizer, "is_exact", False)
            and not orthogonalizer.is_stiefel
        )

    def rotation_step_scale(self, orthogonalizer):
        """The factor of the rotation learning rate for `orthogonalizer`'s P.

        At its identity point, with the first-step scale c of the default
        recipe, every exact map stretches the direction of P's gradient by
        √2 (Gram–Schmidt: R = I + L − Lᵀ, L the strict lower triangle of
        the step), so P's step is the rate over √2 and R's first step is
        the rotation learning rate, as OGD's is for a gradient tangent at
        the identity. Without `equal_first_step` the map's own stretch
        √2/c is divided out.
        """
        own_scale = float(getattr(orthogonalizer, "first_step_scale", 1.0))
        used_scale = self.first_step_scale(orthogonalizer)
        return own_scale / (math.sqrt(2.0) * used_scale)

    def damps_step(self, orthogonalizer):
        """Whether `StiefelAdam` shrinks the steps of `orthogonalizer`'s P."""
        return (
            self.shrinks_adam_steps
            and not self.steps_like_ogd(orthogonalizer)
            and getattr(orthogonalizer, "is_exact", False)
            and getattr(orthogonalizer, "is_scale_invariant", None) is False
        )

    def rotation_learning_rate_factor(self, optimizer_class):
        """The OGD rotation learning rate factor of a Stiefel optimizer."""
        return self.rotation_learning_rate_factors[optimizer_class.__name__]

    def __repr__(self):
        return f"<Recipe {self.name!r}>"


_OGD_FACTORS = {"StiefelSGD": 0.2, "StiefelAdam": 10.0}

DEFAULT = Recipe(
    "default",
    identity_start=True,
    use_gain=True,
    equal_first_step=True,
    decays_rotation=False,
    rotation_learning_rate_factors=_OGD_FACTORS,
    orthonormalized_vectors="columns",
    adam_steps_like_ogd=True,
)
OFFICIAL = Recipe(
    "official",
    identity_start=False,
    use_gain=False,
    equal_first_step=False,
    decays_rotation=True,
    rotation_learning_rate_factors=_OGD_FACTORS,
)
_RECIPES = {recipe.name: recipe for recipe in (DEFAULT, OFFICIAL)}


def official_l2(weight_decay):
    """TF1's `l2_regularizer(wd)`, wd·‖θ‖²/2, as the official code decays.

    `None` for `weight_decay=None`.
    """
    if weight_decay is None:
        return None
    return keras.regularizers.L2(weight_decay / 2.0)


def names():
    """The names of the recipes, `["default", "official"]`."""
    return list(_RECIPES)


def get(identifier):
    """Returns a `Recipe` from its name (or the recipe itself)."""
    if isinstance(identifier, Recipe):
        return identifier
    if isinstance(identifier, str) and identifier in _RECIPES:
        return _RECIPES[identifier]
    raise ValueError(
        f"Invalid value for argument `recipe`. Expected one of {names()}. "
        f"Received: recipe={identifier!r}"
    )

