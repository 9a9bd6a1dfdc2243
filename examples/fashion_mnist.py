"""Trains a small OPT network on Fashion-MNIST (TensorFlow Datasets).

The keras_opt parts are `build_model` (OPT layers with an orthogonalizer),
`build_optimizer` (`StiefelSGD`, which also serves `orthogonalizer="ogd"`)
and the `EnergyMonitor` and `OrthogonalityMonitor` callbacks in `run`, which
log each OPT layer's energy and max|RᵀR − I| every epoch. The rest is plain
Keras and tf.data.

Usage:

```shell
python -m examples.fashion_mnist --epochs=2 --orthogonalizer=gram_schmidt
```

The data comes from a prepared TFDS directory, from the Debian package
`dataset-fashion-mnist` (offline), or from a download; see
`examples/datasets.py`.
"""

import os
import sys
import time

import keras
import tensorflow as tf
from absl import app
from absl import flags

import keras_opt
from examples import datasets as fashion_data


def define_flags(flag_values=flags.FLAGS):
    """Defines the command-line flags of this example in `flag_values`."""
    fv = flag_values
    flags.DEFINE_integer("epochs", 2, "Training epochs.", flag_values=fv)
    flags.DEFINE_integer("batch_size", 128, "Batch size.", flag_values=fv)
    flags.DEFINE_enum(
        "orthogonalizer",
        "gram_schmidt",
        sorted(keras_opt.orthogonalizers.ALIASES),
        "How the OPT layers make R from P (keras_opt.orthogonalizers).",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "learning_rate", 0.1, "Learning rate of StiefelSGD.", flag_values=fv
    )
    flags.DEFINE_float(
        "rotation_learning_rate",
        None,
        "Learning rate of Stiefel-tagged rotations (orthogonalizer ogd or "
        "stiefel); defaults to --learning_rate.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "momentum", 0.9, "Momentum of StiefelSGD.", flag_values=fv
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "TFDS data directory; defaults to $TFDS_DATA_DIR or "
        "~/tensorflow_datasets.",
        flag_values=fv,
    )
    flags.DEFINE_string(
        "model_dir",
        None,
        "If set, TensorBoard logs and the trained model.keras go here.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "max_steps_per_epoch",
        0,
        "If positive, train on at most this many batches per epoch.",
        flag_values=fv,
    )
    flags.DEFINE_integer("seed", 0, "Random seed.", flag_values=fv)
    flags.DEFINE_integer(
        "verbose",
        1,
        "model.fit verbosity: 0, 1 (progress bar) or 2 (a line per epoch).",
        flag_values=fv,
    )


def build_model(orthogonalizer, num_classes=10):
    """Two OPT convolutions, one OPT dense layer and a plain classifier."""
    opt = {"orthogonalizer": orthogonalizer, "activation": "relu"}
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras_opt.layers.OPTConv2D(16, 3, **opt),
            keras.layers.MaxPooling2D(),
            keras_opt.layers.OPTConv2D(32, 3, **opt),
            keras.layers.MaxPooling2D(4),
            keras.layers.Flatten(),
            keras_opt.layers.OPTDense(128, **opt),
            keras.layers.Dense(num_classes),
        ],
        name="opt_fashion_mnist",
    )


def build_optimizer(flags_obj):
    """Momentum SGD, with Riemannian steps on Stiefel-tagged rotations."""
    return keras_opt.optimizers.StiefelSGD(
        learning_rate=flags_obj.learning_rate,
        momentum=flags_obj.momentum,
        rotation_learning_rate=flags_obj.rotation_learning_rate,
    )


def _pipeline(dataset, batch_size, shuffle_seed=None, max_batches=0):
    if max_batches > 0:
        dataset = dataset.take(max_batches * batch_size)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(10_000, seed=shuffle_seed)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(
        lambda image, label: (tf.cast(image, "float32") / 255.0, label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def run(flags_obj, datasets=None, strategy=None):
    """Trains and evaluates the model.

    Args:
        flags_obj: an object with this module's flags as attributes.
        datasets: optional `{"train": ds, "test": ds}` of unbatched
            `(uint8 image (28, 28, 1), int label)` pairs; defaults to
            Fashion-MNIST from `examples.datasets.load_fashion_mnist`.
        strategy: optional `tf.distribute.Strategy` to build the model under.

    Returns:
        A dict with `train_loss`, `train_accuracy`, `test_loss`,
        `test_accuracy`, `orthogonality_errors` (max|RᵀR − I| per OPT layer
        after training), `history` (`History.history`, with the per-layer
        `energy/<layer>` and `orthogonality/<layer>` of every epoch),
        `train_steps` and `train_time_s`.
    """
    keras.utils.set_random_seed(flags_obj.seed)
    if datasets is None:
        datasets = fashion_data.load_fashion_mnist(flags_obj.data_dir)
    train = _pipeline(
        datasets["train"],
        flags_obj.batch_size,
        shuffle_seed=flags_obj.seed,
        max_batches=flags_obj.max_steps_per_epoch,
    )
    test = _pipeline(datasets["test"], flags_obj.batch_size)

    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_model(flags_obj.orthogonalizer)
        model.compile(
            optimizer=build_optimizer(flags_obj),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )

    callbacks = [
        keras_opt.callbacks.EnergyMonitor(),
        keras_opt.callbacks.OrthogonalityMonitor(),
    ]
    if flags_obj.model_dir:
        callbacks.append(keras.callbacks.TensorBoard(flags_obj.model_dir))
    start = time.perf_counter()
    history = model.fit(
        train,
        epochs=flags_obj.epochs,
        callbacks=callbacks,
        verbose=flags_obj.verbose,
    )
    train_time = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(test, verbose=0)
    if flags_obj.model_dir:
        model.save(os.path.join(flags_obj.model_dir, "model.keras"))
    return {
        "train_loss": float(history.history["loss"][-1]),
        "train_accuracy": float(history.history["accuracy"][-1]),
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "orthogonality_errors": {
            key.split("/", 1)[1]: values[-1]
            for key, values in history.history.items()
            if key.startswith("orthogonality/")
        },
        "history": history.history,
        "train_steps": int(
            keras.ops.convert_to_numpy(model.optimizer.iterations)
        ),
        "train_time_s": train_time,
    }


def format_stats(stats):
    """Returns the report printed at the end of the job."""
    lines = [
        f"test accuracy: {stats['test_accuracy']:.4f} "
        f"(test loss {stats['test_loss']:.4f}, "
        f"training {stats['train_time_s']:.1f} s)",
        "orthogonality error max|RᵀR − I| per OPT layer:",
    ]
    for name, error in stats["orthogonality_errors"].items():
        lines.append(f"  {name}: {error:.3g}")
    lines.append("hyperspherical energy per OPT layer, first → last epoch:")
    for name in stats["orthogonality_errors"]:
        energies = stats["history"][f"energy/{name}"]
        lines.append(f"  {name}: {energies[0]:.6g} → {energies[-1]:.6g}")
    return "\n".join(lines)


def main(_):
    try:
        print(format_stats(run(flags.FLAGS)))
    except fashion_data.DataUnavailableError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
