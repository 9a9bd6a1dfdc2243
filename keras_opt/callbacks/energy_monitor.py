"""Logs the hyperspherical energy of each layer's neurons during training."""

import keras
from keras import ops

from keras_opt import energy
from keras_opt import layers
from keras_opt.callbacks import _utils


@keras.saving.register_keras_serializable(package="keras_opt")
@_utils.with_logs_order
class EnergyMonitor(_utils.PeriodicMonitor):
    """Writes the hyperspherical energy of every OPT layer into `logs`.

    For each OPT layer (in `model.layers`, nested models included) it
    computes `keras_opt.energy.hyperspherical_energy(layer.kernel, s,
    half_space)` on the effective kernel W = R·V and stores it under
    `logs["energy/<layer name>"]`, plus the sum over OPT layers under
    `logs["energy/opt_total"]` (OPT's reported metric, reference §10.3).
    With `include_plain_layers=True` it also reports the `kernel` of every
    other layer that has one (Dense, Conv1D/2D/3D, ...). For exact
    orthogonalizers and OGD the OPT values stay constant up to float error
    while a plain layer's energy moves.

    {{logs_order}}

    The energy is computed every `frequency` epochs (`update_freq="epoch"`)
    or batches (`update_freq="batch"`; batch logs then carry the values, so
    `TensorBoard(update_freq=...)` plots them per batch). Epochs in between
    repeat the latest values, so every epoch row has every key. The first
    and last epochs are always computed.

    Args:
        s: Energy type: `0`, `1`, `2`, `"a0"`, `"a1"` or `"a2"`. Defaults
            to `2`.
        half_space: Whether to add the negated neurons. Defaults to `False`.
        include_plain_layers: Whether to also report the kernels of non-OPT
            layers. Defaults to `False`.
        frequency: Compute every this many epochs or batches. Defaults to
            `1`.
        update_freq: `"epoch"` or `"batch"`. Defaults to `"epoch"`.
        epsilon: Added inside the square root of neuron norms. Defaults to
            `1e-4`.
        chunk_size: Gram-matrix block size, see `hyperspherical_energy`.

    Example:

    >>> model.fit(
    ...     x, y, epochs=10,
    ...     callbacks=[
    ...         keras_opt.callbacks.EnergyMonitor(include_plain_layers=True),
    ...         keras.callbacks.TensorBoard("logs"),
    ...     ],
    ... )  # doctest: +SKIP

    Reference:
        Liu et al., "Orthogonal Over-Parameterized Training", CVPR 2021
        (arXiv:2004.04690), the training dynamics of hyperspherical energy.
    """

    def __init__(
        self,
        s=2,
        half_space=False,
        include_plain_layers=False,
        frequency=1,
        update_freq="epoch",
        epsilon=1e-4,
        chunk_size=None,
    ):
        super().__init__(frequency=frequency, update_freq=update_freq)
        energy.check_arguments(s, half_space, epsilon, chunk_size)
        self.s = s
        self.half_space = half_space
        self.include_plain_layers = bool(include_plain_layers)
        self.epsilon = float(epsilon)
        self.chunk_size = chunk_size

    def measure(self):
        values = {}
        total = 0.0
        for layer in layers.opt_layers(self.model):
            value = self._energy(layer.kernel)
            values[f"energy/{layer.name}"] = value
            total += value
        if values:
            values["energy/opt_total"] = total
        if self.include_plain_layers:
            for layer in _utils.plain_kernel_layers(self.model):
                values[f"energy/{layer.name}"] = self._energy(layer.kernel)
        return values

    def _energy(self, kernel):
        value = energy.hyperspherical_energy(
            kernel,
            s=self.s,
            half_space=self.half_space,
            epsilon=self.epsilon,
            chunk_size=self.chunk_size,
        )
        return float(ops.convert_to_numpy(value))

    def get_config(self):
        return {
            "s": self.s,
            "half_space": self.half_space,
            "include_plain_layers": self.include_plain_layers,
            "frequency": self.frequency,
            "update_freq": self.update_freq,
            "epsilon": self.epsilon,
            "chunk_size": self.chunk_size,
        }
