"""Helpers shared by the keras_opt callbacks."""

import keras

from keras_opt import layers
from keras_opt._validation import check_number

UPDATE_FREQS = ("epoch", "batch")


def plain_kernel_layers(model):
    """Built non-OPT layers with a `kernel` of rank >= 2."""
    found = []
    for layer in layers.iter_layers(model):
        if isinstance(layer, layers.BaseOPT) or not layer.built:
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) >= 2:
            found.append(layer)
    return found


def check_frequency(frequency, update_freq):
    if update_freq not in UPDATE_FREQS:
        raise ValueError(
            "Invalid value for argument `update_freq`. Expected one of "
            f"{UPDATE_FREQS}. Received: update_freq={update_freq!r}"
        )
    check_number("frequency", frequency, "int", low=1)


class PeriodicMonitor(keras.callbacks.Callback):
    """Computes `self.measure()` (a dict of floats) every N epochs or batches.

    Values go into the `logs` dict in place. Every epoch's logs get the
    latest values, so History and CSVLogger rows are never missing a key.
    """

    def __init__(self, frequency, update_freq):
        super().__init__()
        check_frequency(frequency, update_freq)
        self.frequency = frequency
        self.update_freq = update_freq
        self._latest = {}
        self._batches_seen = 0

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def measure(self):
        raise NotImplementedError

    def _update(self, logs):
        self._latest = self.measure()
        self.after_measure(self._latest)
        if logs is not None:
            logs.update(self._latest)

    def after_measure(self, values):
        pass

    def on_train_begin(self, logs=None):
        self._latest = {}
        self._batches_seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self._batches_seen += 1
        if self.update_freq == "batch" and (
            self._batches_seen % self.frequency == 0
        ):
            self._update(logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.update_freq == "epoch":
            epochs = (self.params or {}).get("epochs")
            if (
                not self._latest
                or (epoch + 1) % self.frequency == 0
                or (epochs is not None and epoch + 1 == epochs)
            ):
                self._update(None)
        elif not self._latest:
            self._update(None)
        if logs is not None:
            logs.update(self._latest)
