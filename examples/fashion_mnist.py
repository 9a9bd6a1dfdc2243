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
import numpy as np
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
    flags.DEFINE_boolean(
        "epoch_test_metrics",
        True,
        "Evaluate the test split after every epoch (the accuracy-over-epochs "
        "plots of docs/results.md); its time is reported as "
        "test_eval_time_s and left out of train_time_s.",
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


def to_arrays(dataset, chunk=10_000):
    """`(images, labels)` numpy arrays of a finite dataset of pairs."""
    images, labels = [], []
    for image, label in dataset.batch(chunk).as_numpy_iterator():
        images.append(image)
        labels.append(label)
    return np.concatenate(images), np.concatenate(labels)


def load_splits(flags_obj, datasets=None):
    """Train, validation and test splits, decoded once and held in memory.

    `datasets` is an optional `{"train": ds, "test": ds}` of `(uint8 image
    (28, 28, 1), int label)` pairs; defaults to Fashion-MNIST from
    `examples.datasets.load_fashion_mnist`. The validation split is the
    last `--validation_size` examples of "train" (none if 0).

    Each split is read once into numpy arrays (55 MB for Fashion-MNIST) and
    served by `tf.data.Dataset.from_tensor_slices`, in the order of the
    source, so the batches are those of the TFDS stream. TFDS stores the
    images PNG-encoded: streamed, the first epoch decoded the 60,000
    training images, and the validation split (a `skip` of 55,000) decoded
    them again, inside `fit` (about 7 CPU seconds, against 0.2 s for an
    epoch of batches from memory; TFDS's automatic cache serves later
    epochs, `benchmarks/main_job_profile.py --pipeline_only`). Decoding
    once before training keeps that out of the training time.
    """
    if datasets is None:
        datasets = fashion_data.load_fashion_mnist(flags_obj.data_dir)
    images, labels = to_arrays(datasets["train"])
    count = len(labels) - max(flags_obj.validation_size, 0)

    def split(start, stop):
        return tf.data.Dataset.from_tensor_slices(
            (images[start:stop], labels[start:stop])
        )

    return {
        "train": split(0, count),
        "validation": split(count, None) if count < len(labels) else None,
        "test": tf.data.Dataset.from_tensor_slices(
            to_arrays(datasets["test"])
        ),
    }


def compile_model(flags_obj, make_model):
    """`make_model()` under the strategy, compiled; returns (model, strategy)."""
    strategy = common.get_strategy(flags_obj)
    with common.strategy_scope(strategy):
        model = make_model()
        model.compile(
            optimizer=common.build_optimizer(flags_obj),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    return model, strategy


def _fit(flags_obj, seed, run_dir, model, data, select_best):
    """`model.fit` with the monitors; sets `train_time_s` on the History.

    `train_time_s` is the wall time of `fit` less the time of the per-epoch
    test evaluation (`test_eval_time_s`): the training steps, the
    validation pass, the monitors and, with a `run_dir`, the TensorBoard
    and checkpoint writes.
    """
    train = pipeline(data["train"], flags_obj.batch_size, shuffle_seed=seed,
                     max_batches=flags_obj.max_steps_per_epoch)
    test_metrics = None
    if flags_obj.epoch_test_metrics and not select_best:
        test_metrics = common.TestMetrics(x=data["test"])
    extra = []
    if select_best:
        extra.append(keras.callbacks.EarlyStopping(
            "val_accuracy", mode="max", patience=flags_obj.epochs,
            restore_best_weights=True))
    callbacks = common.make_callbacks(flags_obj, run_dir,
                                      test_metrics=test_metrics, extra=extra)
    with common.Timer() as timer:
        history = model.fit(train, validation_data=data["validation"],
                            epochs=flags_obj.epochs, callbacks=callbacks,
                            verbose=flags_obj.verbose)
    history.test_eval_time_s = test_metrics.seconds if test_metrics else 0.0
    history.train_time_s = timer.seconds - history.test_eval_time_s
    return history


def _final_metrics(model, history, data, select_best):
    """Final train/validation/test numbers of a trained model."""
    logs = history.history
    metrics = {"train_accuracy": logs["accuracy"][-1]
               if "accuracy" in logs else None}
    if select_best or "test_accuracy" not in logs:
        final = model.evaluate(data["test"], verbose=0, return_dict=True)
        logs.setdefault("test_accuracy", [final["accuracy"]])
        logs.setdefault("test_loss", [final["loss"]])
        metrics.update(test_accuracy=final["accuracy"],
                       test_loss=final["loss"])
    else:
        metrics.update(test_accuracy=logs["test_accuracy"][-1],
                       test_loss=logs["test_loss"][-1])
    metrics["val_accuracy"] = None
    if data["validation"] is not None:
        if select_best or "val_accuracy" not in logs:
            final = model.evaluate(data["validation"], verbose=0,
                                   return_dict=True)
            logs.setdefault("val_accuracy", [final["accuracy"]])
            metrics["val_accuracy"] = final["accuracy"]
        else:
            metrics["val_accuracy"] = logs["val_accuracy"][-1]
    return metrics


def train_classifier(flags_obj, seed, run_dir, make_model, splits,
                     select_best=False):
    """Builds `make_model()` under the strategy, trains it on `splits`.

    `model.fit` with the monitors, validation and (with
    `--epoch_test_metrics`) test metrics after every epoch, or, under
    `--strategy=multi_worker` (or `--training_loop=custom`), the
    fault-tolerant `keras_opt.distribute.train` loop with step-level
    checkpoints in `<run_dir>/checkpoints`; then the test split is
    evaluated. With `select_best`, the weights of the epoch with the best
    validation accuracy are restored before the final evaluation (and no
    test metrics are taken during training). Returns the run's
    `common.run_record`.
    """
    model, strategy = compile_model(flags_obj, make_model)
    batch_size = flags_obj.batch_size
    data = {
        "train": splits["train"],
        "validation": None if splits["validation"] is None
        else pipeline(splits["validation"], batch_size),
        "test": pipeline(splits["test"], batch_size),
    }
    if common.training_loop(flags_obj, strategy) == "custom":
        history = _train_custom_loop(flags_obj, seed, run_dir, model, splits)
    else:
        history = _fit(flags_obj, seed, run_dir, model, data, select_best)
    if run_dir:
        model.save(os.path.join(run_dir, "model.keras"))
    return common.run_record(
        history,
        seed,
        history.train_time_s,
        **_final_metrics(model, history, data, select_best),
        test_eval_time_s=getattr(history, "test_eval_time_s", 0.0),
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
