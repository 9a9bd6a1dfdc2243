"""The paper's baselines and OPT variants, built by name for comparisons.

`get(name)` returns a `Baseline`, the one layer factory of keras_opt (the
networks of `keras_opt.models` and the example scripts build their layers
with it), which makes the hidden and classifier layers of one row of the
paper's comparison table (Liu et al., CVPR 2021, Table 2):

* `"baseline"`: plain layers, He-normal init, no regularizer;
* `"orthogonal"`: plain layers, orthogonal init (gain √2);
* `"srip"`: He-normal + `SRIP(0.01)` on every kernel, and an
  `SRIPScheduler` in `callbacks()`;
* `"mhe"`: He-normal + `MHE(1.0)` on hidden layers, `MHE(10.0)` on the
  classifier;
* `"hs_mhe"`: as `"mhe"` with half-space hidden layers (the classifier
  stays full space);
* a name of `keras_opt.orthogonalizers.ALIASES` (`"gs"`, `"ogd"`, `"or"`,
  ...): OPT hidden layers with that orthogonalizer and a plain He-normal
  classifier.

The classifier is never an OPT layer, as in the paper. The MHE λ (1 on
hidden layers, 10 on the classifier) are the MHE code's for `s` in {0, 1, 2,
a0}. `"srip"` regularizes every kernel, classifier included, as the PyTorch
SRIP code does, and its `callbacks()` holds the `SRIPScheduler`. `"ogd"`
needs `keras_opt.optimizers.StiefelSGD` (or another Stiefel optimizer).

A `Baseline` can also apply a network's weight decay (the official
wd·‖θ‖²/2 on plain kernels, and on P where the OPT `recipe` decays it), and
S-OPT (`subspace=`) to every OPT layer but the one made with `first=True`.
"""

import math

import keras

from keras_opt import callbacks
from keras_opt import layers
from keras_opt import orthogonalizers
from keras_opt import recipes
from keras_opt import regularizers
from keras_opt.layers.base_opt import default_basis_initializer

__all__ = ["PLAIN_NAMES", "Baseline", "get", "names"]

PLAIN_NAMES = ("baseline", "orthogonal", "srip", "mhe", "hs_mhe")


class Baseline:
    """Makes the layers of one method of the comparison; see the module doc.

    Use `dense(...)` / `conv(...)` (or `conv2d`, ...) to make layers, or
    `kernel_kwargs(...)` to get the keyword arguments for plain Keras layers
    you build yourself, and add `callbacks()` to `fit`.

    Args:
        name: One of `keras_opt.baselines.names()`, or an `Orthogonalizer`.
        weight_decay: The L2 penalty wd·‖θ‖²/2 of the official code on plain
            hidden and classifier kernels, and on the rotations P where the
            recipe decays them (`keras_opt.recipes`). `None` for none. Not
            combined with the regularized baselines (`"srip"`, `"mhe"`,
            `"hs_mhe"`): use the optimizer's `weight_decay` with those.
        recipe: The `recipe` of the OPT layers.
        subspace: S-OPT: the `subspace` of every OPT layer except those made
            with `first=True` (full OPT, P started at the identity, as the
            first layer of the official S-OPT demo).

    Example:

    >>> method = keras_opt.baselines.get("hs_mhe")
    >>> hidden = method.conv2d(64, 3, padding="same")
    >>> head = method.dense(10, classifier=True)
    >>> extra_callbacks = method.callbacks()
    """

    def __init__(self, name, weight_decay=None, recipe="default", subspace=None):
        self.orthogonalizer = None
        if name not in PLAIN_NAMES:
            try:
                self.orthogonalizer = orthogonalizers.get(name)
            except (TypeError, ValueError):
                raise ValueError(
                    "Invalid value for argument `name`. Expected one of "
                    f"{names()}. Received: name={name!r}"
                ) from None
        if weight_decay is not None and name in ("srip", "mhe", "hs_mhe"):
            raise ValueError(
                f"The baseline {name!r} regularizes its kernels already. "
                "Expected: `weight_decay=None` (use the optimizer's "
                f"`weight_decay`). Received: weight_decay={weight_decay!r}"
            )
        if subspace is not None and self.orthogonalizer is None:
            raise ValueError(
                "`subspace` needs OPT layers, but a plain baseline was "
                f"asked for. Expected: an orthogonalizer name with `subspace`, "
                f"or `subspace=None`. Received: name={name!r}, "
                f"subspace={subspace!r}"
            )
        self.name = name
        self.weight_decay = weight_decay
        self.recipe = recipes.get(recipe)
        self.subspace = subspace

    @property
    def is_opt(self):
        """Whether the hidden layers are OPT layers."""
        return self.orthogonalizer is not None

    def kernel_kwargs(self, classifier=False):
        """Keyword arguments for a plain Keras Dense/Conv layer.

        Returns `kernel_initializer` and `kernel_regularizer` (new objects on
        every call). For OPT methods this describes the plain classifier
        (hidden layers are OPT layers, made by `dense`/`conv`).
        """
        kwargs = {
            "kernel_initializer": default_basis_initializer(),
            "kernel_regularizer": recipes.official_l2(self.weight_decay),
        }
        if self.name == "orthogonal":
            kwargs["kernel_initializer"] = keras.initializers.Orthogonal(
                gain=math.sqrt(2.0)
            )
        elif self.name == "srip":
            kwargs["kernel_regularizer"] = regularizers.SRIP(0.01)
        elif self.name in ("mhe", "hs_mhe"):
            if classifier:
                kwargs["kernel_regularizer"] = regularizers.MHE(10.0)
            else:
                kwargs["kernel_regularizer"] = regularizers.MHE(
                    1.0, half_space=self.name == "hs_mhe"
                )
        return kwargs

    def opt_kwargs(self, first=False):
        """Keyword arguments of the OPT hidden layers (`first`: see Args)."""
        kwargs = {
            "orthogonalizer": orthogonalizers.deserialize(
                orthogonalizers.serialize(self.orthogonalizer)
            ),
            "recipe": self.recipe.name,
            "rotation_regularizer": self.recipe.rotation_regularizer(
                self.orthogonalizer, self.weight_decay
            ),
        }
        if self.subspace is not None:
            if first:
                kwargs["rotation_initializer"] = "identity"
            else:
                kwargs["subspace"] = self.subspace
        return kwargs

    def dense(self, units, classifier=False, first=False, **kwargs):
        """A Dense (or OPTDense for OPT methods, unless `classifier`) layer."""
        if self.is_opt and not classifier:
            return layers.OPTDense(units, **{**self.opt_kwargs(first), **kwargs})
        return keras.layers.Dense(
            units, **{**self.kernel_kwargs(classifier), **kwargs}
        )

    def conv(
        self, rank, filters, kernel_size, classifier=False, first=False,
        **kwargs,
    ):
        """A Conv{rank}D (or OPTConv{rank}D) layer, `rank` in 1, 2, 3."""
        if rank not in (1, 2, 3):
            raise ValueError(
                "Invalid value for argument `rank`. Expected one of (1, 2, "
                f"3). Received: rank={rank!r}"
            )
        if self.is_opt and not classifier:
            cls = getattr(layers, f"OPTConv{rank}D")
            kwargs = {**self.opt_kwargs(first), **kwargs}
        else:
            cls = getattr(keras.layers, f"Conv{rank}D")
            kwargs = {**self.kernel_kwargs(classifier), **kwargs}
        return cls(filters, kernel_size, **kwargs)

    def conv1d(self, filters, kernel_size, **kwargs):
        return self.conv(1, filters, kernel_size, **kwargs)

    def conv2d(self, filters, kernel_size, **kwargs):
        return self.conv(2, filters, kernel_size, **kwargs)

    def conv3d(self, filters, kernel_size, **kwargs):
        return self.conv(3, filters, kernel_size, **kwargs)

    def callbacks(self, srip_schedule=None):
        """Callbacks the method needs in `fit` (the SRIP scheduler)."""
        if self.name == "srip":
            return [callbacks.SRIPScheduler(schedule=srip_schedule)]
        return []

    def __repr__(self):
        return f"Baseline(name={self.name!r})"


def names():
    """Every accepted name: the plain baselines and orthogonalizer names."""
    return list(PLAIN_NAMES) + sorted(orthogonalizers.ALIASES)


def get(name, **kwargs):
    """Returns the `Baseline` for `name` (and `Baseline`'s other args)."""
    if isinstance(name, Baseline):
        return name
    return Baseline(name, **kwargs)
