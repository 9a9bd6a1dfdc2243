"""The main job: a small OPT network on Fashion-MNIST (TensorFlow Datasets).

Two OPT convolutions and one OPT dense layer (W = R·V, R orthogonal) under a
plain classifier, trained with `keras_opt.optimizers.StiefelSGD` (which also
serves `--method=ogd`), while `EnergyMonitor` and `OrthogonalityMonitor` log
each layer's hyperspherical energy and max|RᵀR − I| every epoch. `--method`
picks the orthogonalizer, the plain network or a baseline (see
`examples/common.py`); `--compare` also trains the plain network with the
same recipe and prints both accuracies.

Usage:

```shell
python -m examples.fashion_mnist --epochs=2 --method=gram_schmidt --compare
python -m examples.fashion_mnist --method=cp --seeds=0,1,2 --model_dir=/tmp/fm
```

The last `--validation_size` training images are the validation split
(for choosing hyperparameters; never the test split). The data comes from a
prepared TFDS directory, the Debian package `dataset-fashion-mnist`
(offline) or a download; see `examples/datasets.py`.
"""

import os
import sys

import keras
import tensorflow as tf
from absl import app
from absl import flags

from examples import common
from examples import datasets as fashion_data

SCRIPT = "fashion_mnist"


def define_flags(flag_values=flags.FLAGS, **defaults):
    """Defines the flags of this script in `flag_values`."""
    defaults.setdefault("epochs", 10)
    common.define_flags(flag_values, **defaults)
    define_data_flags(flag_values)
    flags.DEFINE_boolean(
        "compare",
        False,
        "Also train the plain network with the same recipe (into "
        "<model_dir>/plain) and print both accuracies.",
        flag_values=flag_values,
    )


def define_data_flags(flag_values):
    """The Fashion-MNIST flags, shared with examples/mlp.py."""
    flags.DEFINE_string(
        "data_dir",
        None,
        "TFDS data directory; defaults to $TFDS_DATA_DIR or "
        "~/tensorflow_datasets.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "validation_size",
        5000,
        "The last this many training images are the validation split.",
        flag_values=flag_values,
    )


def build_model(method, opt_kwargs=None, num_classes=10):
    """Two conv layers and a dense layer of `method`, a plain classifier.

    Args:
        method: a `keras_opt.baselines.Baseline` or its name.
        opt_kwargs: extra arguments of the OPT layers (recipe flags).
    """
    if isinstance(method, str):
        method = common.get_method(method)
    kwargs = {"activation": "relu"}
    if method.is_opt:
        kwargs.update(opt_kwargs or {})
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            method.conv2d(16, 3, padding="same", **kwargs),
            keras.layers.MaxPooling2D(),
            method.conv2d(32, 3, padding="same", **kwargs),
            keras.layers.MaxPooling2D(),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            method.dense(128, **kwargs),
            method.dense(num_classes, classifier=True),
        ],
        name=f"{method.name}_fashion_mnist",
    )


def pipeline(
    dataset, batch_size, shuffle_seed=None, max_batches=0, drop_remainder=False
):
    """Batches `(uint8 image, label)` pairs into float images in [0, 1]."""
    if max_batches > 0:
        dataset = dataset.take(max_batches * batch_size)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(10_000, seed=shuffle_seed)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(
        lambda image, label: (tf.cast(image, "float32") / 255.0, label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def load_splits(flags_obj, datasets=None):
    """Unbatched train, validation and test splits.

    `datasets` is an optional `{"train": ds, "test": ds}` of `(uint8 image
    (28, 28, 1), int label)` pairs; defaults to Fashion-MNIST from
    `examples.datasets.load_fashion_mnist`. The validation split is the
    last `--validation_size` examples of "train" (none if 0).
    """
    if datasets is None:
        datasets = fashion_data.load_fashion_mnist(flags_obj.data_dir)
    train = datasets["train"]
    splits = {"train": train, "validation": None, "test": datasets["test"]}
    size = flags_obj.validation_size
    if size > 0:
        count = int(train.cardinality())
        if count < 0:
            count = int(train.reduce(0, lambda n, _: n + 1))
        splits["train"] = train.take(count - size)
        splits["validation"] = train.skip(count - size)
    return splits


def train_classifier(flags_obj, seed, run_dir, make_model, splits):
    """Builds `make_model()` under the strategy, trains it on `splits`.

    `model.fit` with the monitors and per-epoch test metrics, or, under
    `--strategy=multi_worker` (or `--training_loop=custom`), the
    fault-tolerant `keras_opt.distribute.train` loop with the monitors and
    step-level checkpoints in `<run_dir>/checkpoints`; then the test split
    is evaluated. Returns the run's `common.run_record`.
    """
    batch_size = flags_obj.batch_size
    strategy = common.get_strategy(flags_obj)
    with common.strategy_scope(strategy):
        model = make_model()
        model.compile(
            optimizer=common.build_optimizer(flags_obj),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    test = pipeline(splits["test"], batch_size)
    validation = None
    if splits["validation"] is not None:
        validation = pipeline(splits["validation"], batch_size)
    if common.training_loop(flags_obj, strategy) == "custom":
        history = _train_custom_loop(flags_obj, seed, run_dir, model, splits)
    else:
        train = pipeline(
            splits["train"],
            batch_size,
            shuffle_seed=seed,
            max_batches=flags_obj.max_steps_per_epoch,
        )
        callbacks = common.make_callbacks(
            flags_obj, run_dir, test_metrics=common.TestMetrics(x=test)
        )
        with common.Timer() as timer:
            history = model.fit(
                train,
                validation_data=validation,
                epochs=flags_obj.epochs,
                callbacks=callbacks,
                verbose=flags_obj.verbose,
            )
        history.train_time_s = timer.seconds
    if run_dir:
        model.save(os.path.join(run_dir, "model.keras"))
    logs = history.history
    if "test_accuracy" not in logs:
        final = model.evaluate(test, verbose=0, return_dict=True)
        logs["test_accuracy"] = [final["accuracy"]]
        logs["test_loss"] = [final["loss"]]
        if validation is not None:
            final = model.evaluate(validation, verbose=0, return_dict=True)
            logs["val_accuracy"] = [final["accuracy"]]
    return common.run_record(
        history,
        seed,
        history.train_time_s,
        train_accuracy=logs["accuracy"][-1] if "accuracy" in logs else None,
        val_accuracy=logs["val_accuracy"][-1] if validation else None,
        test_accuracy=logs["test_accuracy"][-1],
        test_loss=logs["test_loss"][-1],
        train_steps=int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
    )


def _train_custom_loop(flags_obj, seed, run_dir, model, splits):
    def dataset_fn(epoch):
        # The order depends on (seed, epoch) only, so a resumed run is exact.
        return pipeline(
            splits["train"],
            flags_obj.batch_size,
            shuffle_seed=seed * 100_003 + epoch,
            max_batches=flags_obj.max_steps_per_epoch,
            drop_remainder=True,
        )

    strategy = common.get_strategy(flags_obj)
    return common.train_custom_loop(
        flags_obj,
        model,
        dataset_fn,
        run_dir,
        common.loop_callbacks(flags_obj, run_dir, strategy),
        flags_obj.epochs,
    )


def run(flags_obj, datasets=None):
    """Trains and evaluates the network for every seed.

    Args:
        flags_obj: an object with this script's flags as attributes.
        datasets: optional `{"train": ds, "test": ds}`, see `load_splits`.

    Returns:
        The results of `common.run_seeds` (also in `<model_dir>/results.json`),
        with the plain network's under `"compare"` when `--compare` is set.
    """
    splits = load_splits(flags_obj, datasets)

    def train_one(flags_obj, seed, run_dir):
        method = common.get_method(flags_obj)
        return train_classifier(
            flags_obj,
            seed,
            run_dir,
            lambda: build_model(method, common.opt_layer_kwargs(flags_obj)),
            splits,
        )

    results = common.run_seeds(flags_obj, SCRIPT, train_one)
    if flags_obj.compare and flags_obj.method != common.PLAIN:
        model_dir = flags_obj.model_dir
        plain = common.with_overrides(
            flags_obj,
            method=common.PLAIN,
            compare=False,
            model_dir=os.path.join(model_dir, "plain") if model_dir else None,
        )
        results["compare"] = common.run_seeds(plain, SCRIPT, train_one)
        if model_dir:
            common.write_results(results, model_dir)
    return results


def main(_):
    try:
        print(common.format_results(run(flags.FLAGS)))
    except fashion_data.DataUnavailableError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
