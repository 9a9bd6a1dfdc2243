"""Logs how far each OPT layer's rotation is from orthogonal."""

import warnings

import keras
from keras import ops

from keras_opt import layers
from keras_opt import linalg
from keras_opt._validation import check_number
from keras_opt.callbacks import _utils

_ON_EXCEED = ("warn", "stop")


@keras.saving.register_keras_serializable(package="keras_opt")
@_utils.with_logs_order
class OrthogonalityMonitor(_utils.PeriodicMonitor):
    """Writes `max |RᵀR − I|` of every OPT layer into `logs`, with a budget.

    For each OPT layer (in `model.layers`, nested models included) it reads
    R = `layer.rotation` and stores the largest entry
    of `|RᵀR − I|` (evaluated in float64) under
    `logs["orthogonality/<layer name>"]`. For exact maps this measures
    float32 round-off; for OGD (`"stiefel"`) the drift of the retraction;
    for `"penalty"` (OR) and `"unconstrained"` (UPT), where R is free, how
    far R is from orthogonal.

    With a `budget`, an error above it in a layer whose orthogonalizer
    promises orthogonality (exact maps and Stiefel) either warns
    (`on_exceed="warn"`) or warns and stops training (`"stop"`, through
    `model.stop_training = True`). OR and UPT layers are logged but never
    checked against the budget.

    {{logs_order}}

    Args:
        budget: `None` or a positive float, the largest acceptable error.
        on_exceed: `"warn"` or `"stop"`. Defaults to `"warn"`.
        frequency: Compute every this many epochs or batches. Defaults to
            `1`.
        update_freq: `"epoch"` or `"batch"`. Defaults to `"epoch"`.

    Example:

    >>> monitor = keras_opt.callbacks.OrthogonalityMonitor(
    ...     budget=1e-4, on_exceed="stop"
    ... )
    >>> model.fit(x, y, callbacks=[monitor])  # doctest: +SKIP
    """

    def __init__(
        self, budget=None, on_exceed="warn", frequency=1, update_freq="epoch"
    ):
        super().__init__(frequency=frequency, update_freq=update_freq)
        check_number(
            "budget", budget, low=0.0, low_inclusive=False, allow_none=True
        )
        if on_exceed not in _ON_EXCEED:
            raise ValueError(
                "Invalid value for argument `on_exceed`. Expected one of "
                f"{_ON_EXCEED}. Received: on_exceed={on_exceed!r}"
            )
        self.budget = None if budget is None else float(budget)
        self.on_exceed = on_exceed

    def measure(self):
        values = {}
        self._checked = set()
        for layer in layers.opt_layers(self.model):
            error = linalg.orthogonality_error(
                ops.cast(layer.rotation, "float64")
            )
            key = f"orthogonality/{layer.name}"
            values[key] = float(ops.convert_to_numpy(error))
            orthogonalizer = layer.orthogonalizer
            if getattr(orthogonalizer, "is_exact", False) or getattr(
                orthogonalizer, "is_stiefel", False
            ):
                self._checked.add(key)
        return values

    def after_measure(self, values):
        if self.budget is None:
            return
        over = {
            key: value
            for key, value in values.items()
            if key in self._checked and not value <= self.budget
        }
        if not over:
            return
        listed = ", ".join(f"{key}={value:.3g}" for key, value in over.items())
        action = "Stopping training." if self.on_exceed == "stop" else ""
        warnings.warn(
            f"Orthogonality error above the budget {self.budget:g}: "
            f"{listed}. {action}".rstrip(),
            stacklevel=2,
        )
        if self.on_exceed == "stop":
            self.model.stop_training = True

    def get_config(self):
        return {
            "budget": self.budget,
            "on_exceed": self.on_exceed,
            "frequency": self.frequency,
            "update_freq": self.update_freq,
        }
