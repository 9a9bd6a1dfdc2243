"""SubspaceEpisodes: S-OPT's episodes (merge, resample, reset) in `fit`."""

import keras

from keras_opt import layers
from keras_opt._validation import check_number
from keras_opt.optimizers import slots


def subspace_layers(model):
    """Returns the OPT layers of `model` that have episodes.

    S-OPT layers (with a `subspace`) and block layers (with a `block_size`,
    whose episodes redraw the permutation of their blocks).
    """
    return [
        layer
        for layer in layers.opt_layers(model, built_only=False)
        if getattr(layer, "subspace_size", None) is not None
        or getattr(layer, "block_size", None) is not None
    ]


def _episodes_ended(layer):
    """The episode counter of an S-OPT or block layer (a weight)."""
    if getattr(layer, "block_size", None) is not None:
        return layer.block_episode
    return layer.subspace_episode


def next_subspace_episode(model, optimizer=None):
    """Ends the current S-OPT episode of every S-OPT layer of `model`.

    Each layer merges its rotation into its basis (V[I] ← R̃·V[I]), samples
    the next index set I and resets P̃ to the identity
    (`layer.next_episode()`); then the optimizer state of every P̃ is reset
    too (`keras_opt.optimizers.slots.reset_slots`), so that no momentum of
    the old subspace reaches the new one. Nothing else changes:
    BatchNormalization and all other variables keep their values, and the
    network computes the same function before and after. Use it in a
    custom training loop; `SubspaceEpisodes` calls it in `fit`. Call it
    between steps, outside a `tf.function`.

    Args:
        model: A built `keras.Model` (or layer) with S-OPT layers.
        optimizer: The optimizer that trains the model. Defaults to
            `model.optimizer`; `None` when there is none resets no slots.

    Returns:
        The number of S-OPT layers whose episode ended.

    Example:

    ```python
    for step, (x, y) in enumerate(dataset):
        train_step(x, y)
        if (step + 1) % 750 == 0:
            keras_opt.callbacks.next_subspace_episode(model, optimizer)
    ```
    """
    found = subspace_layers(model)
    for layer in found:
        layer.next_episode()
    optimizer = optimizer or getattr(model, "optimizer", None)
    if optimizer is not None:
        slots.reset_slots(
            optimizer, [layer.rotation_parameter for layer in found]
        )
    return len(found)


@keras.saving.register_keras_serializable(package="keras_opt")
class SubspaceEpisodes(keras.callbacks.Callback):
    """Ends an S-OPT episode every `every_n_steps` training steps.

    S-OPT layers (OPT layers built with `subspace=p`) rotate only a random
    p-dimensional coordinate subspace of their fan-in per episode. At every
    multiple of `every_n_steps` of `model.optimizer.iterations` this
    callback calls `next_subspace_episode(model)`: merge R̃ into V, resample
    the subspace, reset P̃ to the identity and its optimizer slots. The
    official S-OPT demo uses episodes of 750 iterations (400 of them).
    Block layers (`block_size=b`) in the model take the same episodes: merge
    R into V, redraw the permutation of their blocks, reset P
    (`keras_opt.layers.blocks`).

    Whenever the episodes due, `iterations // every_n_steps`, change (and
    at the first step of `fit`), it compares them with the episodes the
    layers have ended, their `subspace_episode` (`block_episode`) counter,
    and ends one episode if more are due. Both numbers are state that
    `.keras` files, checkpoints and `keras.callbacks.BackupAndRestore` save
    and restore together (the counter, index set and basis are layer
    weights), so a resumed run
    continues with the same episodes and indices as an uninterrupted one,
    whatever the order of the callbacks. The episodes are numbered by the
    optimizer's steps: with a fresh optimizer (`iterations = 0`) on layers
    that already ended k episodes, the next one ends at step
    `(k + 1) * every_n_steps`. With `steps_per_execution=k` the callback
    runs every k steps, and a boundary is handled at the first callback
    after it.

    Args:
        every_n_steps: Positive int, the length of an episode in steps.

    Example:

    ```python
    model = keras_opt.models.cnn6(subspace=0.25)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=...)
    model.fit(dataset, epochs=768,
              callbacks=[keras_opt.callbacks.SubspaceEpisodes(750)])
    ```
    """

    def __init__(self, every_n_steps=750):
        super().__init__()
        self.every_n_steps = check_number(
            "every_n_steps", every_n_steps, "int", low=1
        )
        self._checked_due = None

    def _due(self):
        iterations = keras.ops.convert_to_numpy(self.model.optimizer.iterations)
        return int(iterations) // self.every_n_steps

    def on_train_begin(self, logs=None):
        if not subspace_layers(self.model):
            raise ValueError(
                "SubspaceEpisodes found no S-OPT layer and no block layer "
                "in the model. Expected: OPT layers built with `subspace=` "
                "or `block_size=`. Received: "
                f"model '{self.model.name}'"
            )
        self._checked_due = None

    def on_train_batch_end(self, batch, logs=None):
        due = self._due()
        if due == self._checked_due:
            return
        # Read only when `due` changes: at most one episode per boundary.
        self._checked_due = due
        ended = min(
            int(keras.ops.convert_to_numpy(_episodes_ended(layer)))
            for layer in subspace_layers(self.model)
        )
        if due > ended:
            next_subspace_episode(self.model, self.model.optimizer)

    def get_config(self):
        return {"every_n_steps": self.every_n_steps}
