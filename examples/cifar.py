"""The OPT paper's CIFAR-100 recipe, for any of its networks.

The official training of `opt_reference.md` §8.1–§8.3, on TFDS `cifar100`:

- data: 4-pixel mirror (symmetric) padding, a random 32×32 crop and a
  horizontal flip; raw [0, 255] pixels, scaled inside the model;
- loss: softmax cross-entropy with label smoothing 0.01 and the 1e-4
  probability floor, −Σ ỹ·log(softmax(z) + 1e-4);
- momentum SGD (0.9), batch 128, lr 0.1 × 0.1 at 30k, 50k and 65k of 75k
  iterations; the L2 penalty 5e-4·‖θ‖²/2 on the rotations P, the BN γ/β
  and the classifier (`--l2`);
- OGD (`--method=ogd`): rotations by Cayley SGD at 0.02 × 0.2 at the same
  steps, not decayed; the other variables' L2 scaled by 0.1;
- S-OPT (`--subspace=0.25`): 400 episodes of 750 iterations (300k), lr
  drops at 120k, 195k and 255k; the first convolution stays full OPT.

`--model` is any network of `keras_opt.models`; `--method` is `plain` or an
orthogonalizer name (see `examples/common.py`); `--recipe` is the OPT
layers' (`keras_opt.recipes`; `official` by default here, the released
code's, whose P is decayed with `--l2`); `--strategy` and
`--training_loop` as there (`multi_worker` trains with the fault-tolerant
`keras_opt.distribute.train`, S-OPT's episodes and the monitors included).
An "epoch" is 390 steps, as the official code reshuffles every 390
iterations.

Usage (the full recipe; about 1.5 h for CNN-6 on one modern GPU):

```shell
python -m examples.cifar --model=cnn6 --method=gs --model_dir=/tmp/cifar
python -m examples.cifar --model=cnn6 --method=ogd --model_dir=/tmp/ogd
python -m examples.cifar --model=wide_cnn9 --method=gs --subspace=0.25
```
"""

import math
import os

import keras
import tensorflow as tf
from absl import app
from absl import flags

import keras_opt
from examples import common
from keras_opt.callbacks import subspace_episodes

SCRIPT = "cifar"
MODELS = ("mlp", "cnn6", "cnn9", "wide_cnn9", "resnet20", "resnet32")
NUM_CLASSES = 100
# opt_reference.md §8.1, §8.3: (train steps, lr drop steps).
OPT_SCHEDULE = (75_000, (30_000, 50_000, 65_000))
S_OPT_SCHEDULE = (300_000, (120_000, 195_000, 255_000))


def define_flags(flag_values=flags.FLAGS, **defaults):
    """Defines the flags of this script in `flag_values`."""
    fv = flag_values
    defaults.setdefault("learning_rate", 0.1)
    # The paper's recipe: its OPT layers are the released code's.
    defaults.setdefault("recipe", "official")
    common.define_flags(fv, **defaults)
    flags.DEFINE_enum("model", "cnn6", MODELS,
                      "The network (keras_opt.models).", flag_values=fv)
    flags.DEFINE_string(
        "subspace",
        None,
        "S-OPT: p as an int, or a fraction of d (0.25 = the paper's d/4).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "train_steps",
        None,
        "Training iterations; defaults to the recipe's (75,000, or 300,000 "
        "for S-OPT). The lr drops stay at the recipe's steps.",
        flag_values=fv,
    )
    flags.DEFINE_integer("steps_per_epoch", 390,
                         "Steps between test evaluations and checkpoints.",
                         flag_values=fv)
    flags.DEFINE_integer("episode_steps", 750, "S-OPT episode length.",
                         flag_values=fv)
    flags.DEFINE_float(
        "l2",
        5e-4,
        "The official L2 weight decay wd (penalty wd·‖θ‖²/2) on the "
        "rotations, BN γ/β and the classifier; ×0.1 for --method=ogd.",
        flag_values=fv,
    )
    flags.DEFINE_string("data_dir", None, "TFDS data directory.",
                        flag_values=fv)


@keras.saving.register_keras_serializable(package="keras_opt_examples")
class OfficialLoss(keras.losses.Loss):
    """−Σ ỹ·log(softmax(z) + floor), ỹ = (1 − ε)·onehot + ε/C (§8.1)."""

    def __init__(self, num_classes=NUM_CLASSES, label_smoothing=0.01,
                 floor=1e-4, name="official_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.floor = floor

    def call(self, y_true, y_pred):
        ops = keras.ops
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        targets = ops.one_hot(labels, self.num_classes)
        targets = targets * (1.0 - self.label_smoothing) + (
            self.label_smoothing / self.num_classes
        )
        probabilities = ops.softmax(ops.cast(y_pred, "float32"), axis=-1)
        return -ops.sum(targets * ops.log(probabilities + self.floor), axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
            "floor": self.floor,
        }


def parse_subspace(value):
    """`--subspace` as an int p, a float fraction, or None."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        raise ValueError(
            "Invalid value for flag `--subspace`. Expected an int p or a "
            f"float fraction of d. Received: {value!r}"
        ) from None


def orthogonalizer_of(flags_obj):
    """The orthogonalizer of `--method`, or None for `plain`."""
    method = common.get_method(flags_obj)
    if method.is_opt:
        return method.orthogonalizer
    if flags_obj.method != common.PLAIN:
        raise ValueError(
            "Invalid value for flag `--method`. Expected `plain` or an "
            f"orthogonalizer name. Received: {flags_obj.method!r} (the "
            "paper's networks take an orthogonalizer or none)"
        )
    return None


def build_model(flags_obj):
    """`--model` with the recipe's OPT layers and L2 penalty."""
    orthogonalizer = orthogonalizer_of(flags_obj)
    l2 = flags_obj.l2 or None
    if l2 and orthogonalizer is not None and orthogonalizer.is_stiefel:
        l2 *= 0.1  # The OGD script's loss is L_fit + 0.1·L2 (§8.2).
    return getattr(keras_opt.models, flags_obj.model)(
        num_classes=NUM_CLASSES,
        orthogonalizer=orthogonalizer,
        subspace=parse_subspace(flags_obj.subspace),
        weight_decay=l2,
        recipe=common.get_recipe(flags_obj).name,
        input_shape=(32, 32, 3),
    )


def schedule(flags_obj):
    """(train steps, lr drop steps) of the recipe."""
    steps, drops = (
        S_OPT_SCHEDULE if parse_subspace(flags_obj.subspace) else OPT_SCHEDULE
    )
    return flags_obj.train_steps or steps, drops


def build_optimizer(flags_obj):
    """StiefelSGD with the recipe's step schedules (OGD's for rotations)."""
    _, drops = schedule(flags_obj)
    lr = flags_obj.learning_rate
    learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay(
        list(drops), [lr * 0.1**k for k in range(4)]
    )
    rotation_learning_rate = None
    orthogonalizer = orthogonalizer_of(flags_obj)
    if orthogonalizer is not None and orthogonalizer.is_stiefel:
        rate = flags_obj.rotation_learning_rate or 0.02
        rotation_learning_rate = (
            keras.optimizers.schedules.PiecewiseConstantDecay(
                list(drops), [rate * 0.2**k for k in range(4)]
            )
        )
    return keras_opt.optimizers.StiefelSGD(
        learning_rate=learning_rate,
        rotation_learning_rate=rotation_learning_rate,
        momentum=flags_obj.momentum,
        weight_decay=flags_obj.weight_decay,
    )


def augment(image, label):
    """Mirror-pad by 4, crop 32×32 at random, flip at random (§8.1)."""
    image = tf.cast(image, "float32")
    image = tf.pad(image, [[4, 4], [4, 4], [0, 0]], mode="SYMMETRIC")
    image = tf.image.random_crop(image, (32, 32, 3))
    return tf.image.random_flip_left_right(image), label


def load_datasets(flags_obj):
    """`(train, test)`: `train(shuffle_seed)` the augmented, repeated train
    set, `test` the test set, batched."""
    import tensorflow_datasets as tfds

    train, test = tfds.load(
        "cifar100",
        split=["train", "test"],
        as_supervised=True,
        data_dir=flags_obj.data_dir,
    )

    def train_set(shuffle_seed):
        return (
            train.shuffle(
                50_000, seed=shuffle_seed, reshuffle_each_iteration=True
            )
            .repeat()
            .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(flags_obj.batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )

    test = (
        test.map(lambda image, label: (tf.cast(image, "float32"), label))
        .batch(100)
        .prefetch(tf.data.AUTOTUNE)
    )
    return train_set, test


def train_one(flags_obj, seed, run_dir):
    """Trains `--model` with the recipe; returns its `common.run_record`.

    `model.fit`, or under `--strategy=multi_worker` (or
    `--training_loop=custom`) the fault-tolerant `keras_opt.distribute.train`
    loop, with S-OPT's episodes and the monitors on either path; the loop
    reshuffles the data every epoch with a seed of (seed, epoch).
    """
    strategy = common.get_strategy(flags_obj)
    train, test = load_datasets(flags_obj)
    with common.strategy_scope(strategy):
        model = build_model(flags_obj)
        model.compile(
            optimizer=build_optimizer(flags_obj),
            loss=OfficialLoss(),
            metrics=["accuracy"],
        )
    extra = []
    if parse_subspace(flags_obj.subspace):
        extra.append(
            keras_opt.callbacks.SubspaceEpisodes(flags_obj.episode_steps)
        )
    train_steps, _ = schedule(flags_obj)
    steps_per_epoch = min(flags_obj.steps_per_epoch, train_steps)
    epochs = math.ceil(train_steps / steps_per_epoch)
    if common.training_loop(flags_obj, strategy) == "custom":
        history = common.train_custom_loop(
            flags_obj,
            model,
            lambda epoch: train(seed * 100_003 + epoch),
            run_dir,
            common.loop_callbacks(flags_obj, run_dir, strategy, extra),
            epochs,
            steps_per_epoch,
        )
        final = model.evaluate(test, verbose=0, return_dict=True)
        history.history["test_accuracy"] = [final["accuracy"]]
        history.history["test_loss"] = [final["loss"]]
    else:
        callbacks = common.make_callbacks(
            flags_obj, run_dir, test_metrics=common.TestMetrics(x=test),
            extra=extra,
        )
        with common.Timer() as timer:
            history = model.fit(
                train(seed),
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                callbacks=callbacks,
                verbose=flags_obj.verbose,
            )
        history.train_time_s = timer.seconds
    if run_dir:
        model.save(os.path.join(run_dir, "model.keras"))
    return _run_record(flags_obj, seed, model, history)


def _run_record(flags_obj, seed, model, history):
    logs = history.history
    episodes = [
        int(keras.ops.convert_to_numpy(layer.subspace_episode))
        for layer in subspace_episodes.subspace_layers(model)
    ]
    return common.run_record(
        history,
        seed,
        history.train_time_s,
        model=flags_obj.model,
        subspace_episodes=max(episodes, default=None),
        paper_parameter_count=keras_opt.models.paper_parameter_count(model),
        train_accuracy=logs["accuracy"][-1] if "accuracy" in logs else None,
        test_accuracy=logs["test_accuracy"][-1],
        test_loss=logs["test_loss"][-1],
        train_steps=int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
    )


def run(flags_obj):
    """Trains and evaluates `--model` for every seed; see `common.run_seeds`."""
    return common.run_seeds(flags_obj, SCRIPT, train_one)


def main(_):
    print(common.format_results(run(flags.FLAGS)))


if __name__ == "__main__":
    define_flags()
    app.run(main)
