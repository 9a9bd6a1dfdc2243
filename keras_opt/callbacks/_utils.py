"""Helpers shared by the keras_opt callbacks."""

import sys

import keras

from keras_opt import layers
from keras_opt._validation import check_number

UPDATE_FREQS = ("epoch", "batch")

LOGS_ORDER = """The values are written into the `logs` dict that Keras passes along the
    callback list, so `History`, `CSVLogger`, `TensorBoard`,
    `EarlyStopping`, `ModelCheckpoint` and `ReduceLROnPlateau` see them,
    wherever the monitor is listed in `callbacks=[...]`: at the start of
    training it moves itself ahead of the callbacks that are not keras_opt
    monitors, so that it runs first at every epoch (and batch) end."""


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


def with_logs_order(cls):
    """Fills the `{{logs_order}}` placeholder of a monitor's docstring."""
    cls.__doc__ = cls.__doc__.replace("{{logs_order}}", LOGS_ORDER)
    return cls


def check_frequency(frequency, update_freq):
    if update_freq not in UPDATE_FREQS:
        raise ValueError(
            "Invalid value for argument `update_freq`. Expected one of "
            f"{UPDATE_FREQS}. Received: update_freq={update_freq!r}"
        )
    check_number("frequency", frequency, "int", low=1)


class LogsWriter(keras.callbacks.Callback):
    """A callback whose values go into `logs`, ahead of the other callbacks.

    Keras passes one `logs` dict along the callbacks in the order of
    `callbacks=[...]`, so a callback listed earlier (TensorBoard, CSVLogger,
    EarlyStopping, ModelCheckpoint, ...) never sees the keys a later one
    adds, and TensorBoard drops them silently. At `on_train_begin` a
    `LogsWriter` therefore moves itself, in the
    `keras.callbacks.CallbackList` that runs it (`fit`'s, or
    `keras_opt.distribute.train`'s), ahead of every callback that is not a
    `LogsWriter`; the writers keep their order among themselves. Called
    from anything else than a `CallbackList`, it stays where it is.
    """

    def on_train_begin(self, logs=None):
        callback_list = _calling_callback_list(self)
        if callback_list is None:
            return
        listed = callback_list.callbacks
        position = next(i for i, c in enumerate(listed) if c is self)
        first = next(
            i for i, c in enumerate(listed) if not isinstance(c, LogsWriter)
        )
        if first < position:
            # CallbackList is iterating `listed` at `position`: moving this
            # callback to an earlier place leaves the callbacks after it
            # where they were, so each is still called once.
            listed.insert(first, listed.pop(position))


def _calling_callback_list(callback, depth=8):
    """The `CallbackList` up the call stack that holds `callback`, or None.

    Keras gives a callback no reference to its list; the list is the
    `self` of the frame that called the hook.
    """
    frame = sys._getframe(1)
    try:
        for _ in range(depth):
            frame = frame.f_back
            if frame is None:
                return None
            owner = frame.f_locals.get("self")
            if isinstance(owner, keras.callbacks.CallbackList) and any(
                c is callback for c in owner.callbacks
            ):
                return owner
        return None
    finally:
        del frame


class PeriodicMonitor(LogsWriter):
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
        super().on_train_begin(logs)
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
