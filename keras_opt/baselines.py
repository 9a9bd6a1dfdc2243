"""The paper's baselines and OPT variants, built by name for comparisons.

`get(name)` returns a `Baseline` that makes the hidden and classifier layers
of one row of the paper's comparison table (Liu et al., CVPR 2021, Table 2):

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
"""

import math

import keras

from keras_opt import callbacks
from keras_opt import layers
from keras_opt import orthogonalizers
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
        name: One of `keras_opt.baselines.names()`.

    Example:

    >>> method = keras_opt.baselines.get("hs_mhe")
    >>> hidden = method.conv2d(64, 3, padding="same")
    >>> head = method.dense(10, classifier=True)
    >>> extra_callbacks = method.callbacks()
    """

    def __init__(self, name):
        if name in PLAIN_NAMES:
            self.orthogonalizer = None
        else:
            try:
                self.orthogonalizer = orthogonalizers.get(name)
            except (TypeError, ValueError):
                raise ValueError(
                    "Invalid value for argument `name`. Expected one of "
                    f"{names()}. Received: name={name!r}"
                ) from None
        self.name = name

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
            "kernel_regularizer": None,
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

    def dense(self, units, classifier=False, **kwargs):
        """A Dense (or OPTDense for OPT methods, unless `classifier`) layer."""
        if self.is_opt and not classifier:
            return layers.OPTDense(units, orthogonalizer=self.name, **kwargs)
        return keras.layers.Dense(
            units, **{**self.kernel_kwargs(classifier), **kwargs}
        )

    def conv(self, rank, filters, kernel_size, classifier=False, **kwargs):
        """A Conv{rank}D (or OPTConv{rank}D) layer, `rank` in 1, 2, 3."""
        if rank not in (1, 2, 3):
            raise ValueError(
                "Invalid value for argument `rank`. Expected one of (1, 2, "
                f"3). Received: rank={rank!r}"
            )
        if self.is_opt and not classifier:
            cls = getattr(layers, f"OPTConv{rank}D")
            return cls(
                filters, kernel_size, orthogonalizer=self.name, **kwargs
            )
        cls = getattr(keras.layers, f"Conv{rank}D")
        return cls(
            filters, kernel_size, **{**self.kernel_kwargs(classifier), **kwargs}
        )

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


def get(name):
    """Returns the `Baseline` for `name`; see the module docstring."""
    if isinstance(name, Baseline):
        return name
    return Baseline(name)
