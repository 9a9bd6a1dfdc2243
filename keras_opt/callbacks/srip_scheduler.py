"""Lowers the coefficient of SRIP regularizers during training."""

import keras

from keras_opt import layers
from keras_opt.callbacks import _utils
from keras_opt.regularizers import SRIP

# The SRIP code's `adjust_ortho_decay_rate(epoch + 1)` for CIFAR
# (VITA-Group/Orthogonality-in-CNNs, Wide-ResNet/ResNet training scripts):
# the factor is multiplied by 1e-3 after epoch 20, 1e-4 after 50, 1e-6
# after 70 and set to 0 after 120 (1-based epochs, so 0-based 20, 50, ...).
SRIP_BOUNDARIES = ((20, 1e-3), (50, 1e-4), (70, 1e-6), (120, 0.0))


@keras.saving.register_keras_serializable(package="keras_opt")
def srip_schedule(epoch):
    """The SRIP recipe's multiplier of the initial factor at 0-based `epoch`.

    1 for epochs 0–19, 1e-3 for 20–49, 1e-4 for 50–69, 1e-6 for 70–119 and
    0 from epoch 120 on, as in the official SRIP code (a 200-epoch CIFAR
    schedule). Scale the boundaries for shorter runs with
    `SRIPScheduler(schedule=...)`.
    """
    multiplier = 1.0
    for boundary, value in SRIP_BOUNDARIES:
        if epoch >= boundary:
            multiplier = value
    return multiplier


@keras.saving.register_keras_serializable(package="keras_opt")
class SRIPScheduler(_utils.LogsWriter):
    """Sets each SRIP regularizer's coefficient to `factor * schedule(epoch)`.

    At the start of every epoch it assigns `schedule(epoch)` times the
    regularizer's `factor` to its `coefficient` variable. The variable is
    read inside the compiled train step, so the change takes effect at once,
    without retracing. By default it finds every `SRIP` instance attached to
    a layer of `model.layers`, nested models included (as
    `kernel_regularizer`, `rotation_regularizer` or any other attribute);
    pass `regularizers` to pick them yourself. The
    current multiplier is written to `logs["srip_multiplier"]` at epoch end,
    as `LearningRateScheduler` writes `"learning_rate"`; like the monitors,
    the scheduler moves itself ahead of the other callbacks at the start of
    training, so `TensorBoard` and `CSVLogger` see it in any order.

    Args:
        schedule: A function `epoch (0-based int) -> multiplier`. Defaults
            to `srip_schedule`, the SRIP code's 1 → 1e-3 → 1e-4 → 1e-6 → 0
            at epochs 20, 50, 70, 120.
        regularizers: `None` (find them in the model) or a list of `SRIP`.
        verbose: `0` (quiet) or `1` (print each change).

    Example:

    >>> srip = keras_opt.regularizers.SRIP(0.01)
    >>> dense = keras.layers.Dense(8, kernel_regularizer=srip)
    >>> callback = keras_opt.callbacks.SRIPScheduler(
    ...     schedule=lambda epoch: 1.0 if epoch < 5 else 0.0
    ... )

    Reference:
        Bansal, Chen and Wang, "Can We Gain More from Orthogonality
        Regularizations in Training Deep CNNs?", NeurIPS 2018
        (https://github.com/VITA-Group/Orthogonality-in-CNNs).
    """

    def __init__(self, schedule=None, regularizers=None, verbose=0):
        super().__init__()
        if schedule is None:
            schedule = srip_schedule
        if not callable(schedule):
            raise TypeError(
                "Invalid value for argument `schedule`. Expected a callable "
                f"epoch -> multiplier. Received: schedule={schedule!r}"
            )
        if regularizers is not None:
            regularizers = list(regularizers)
            for regularizer in regularizers:
                if not isinstance(regularizer, SRIP):
                    raise TypeError(
                        "Invalid value for argument `regularizers`. Expected "
                        "a list of keras_opt.regularizers.SRIP. Received: "
                        f"{regularizer!r}"
                    )
        self.schedule = schedule
        self.regularizers = regularizers
        self.verbose = verbose
        self._multiplier = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.regularizers is None:
            self._found = _find_srip(self.model)
        else:
            self._found = self.regularizers

    def on_epoch_begin(self, epoch, logs=None):
        multiplier = float(self.schedule(epoch))
        if not multiplier >= 0:
            raise ValueError(
                "The SRIP schedule must return a float >= 0. Received: "
                f"{multiplier!r} at epoch {epoch}"
            )
        if self.verbose and multiplier != self._multiplier:
            print(
                f"\nEpoch {epoch + 1}: SRIPScheduler multiplier "
                f"{multiplier:g}."
            )
        # JAX traces the step at its first call, after the first epoch
        # begins: only a later change needs a new trace.
        changed = self._multiplier not in (None, multiplier)
        self._multiplier = multiplier
        for regularizer in self._found:
            regularizer.coefficient.assign(regularizer.factor * multiplier)
        if changed and keras.backend.backend() == "jax":
            # The coefficient is no model variable: a compiled JAX step
            # holds the value it was traced with.
            self.model.make_train_function(force=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._multiplier is not None:
            logs["srip_multiplier"] = self._multiplier

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(
            config["schedule"]
        )
        return cls(**config)

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "verbose": self.verbose,
        }


def _find_srip(model):
    found = {}
    for layer in layers.iter_layers(model):
        for value in vars(layer).values():
            if isinstance(value, SRIP):
                found[id(value)] = value
    return list(found.values())
