"""CLS-OPT on Fashion-MNIST: an OPT classifier head on 2-D features.

A small plain CNN ends in a `--feature_dim`-dimensional feature layer (2 by
default, so that features can be drawn); the classifier on top is CLS-OPT,
`keras_opt.layers.OPTClassifier` (logits x·R·V: fixed random class
prototypes V, a learned orthogonal R), with the orthogonalizer of
`--method`. The same network with a plain `Dense` head is trained beside it
with the same recipe. The script writes the slides' "visualization" figure:
test features coloured by class, with the class directions (the columns of
R·V, or of the Dense kernel) drawn from the origin, one panel per head.
Before training, CLS-OPT's fixed prototypes are assigned to the classes
from the class-mean training images (`--assign_prototypes`), so that
classes that look alike get neighbouring prototypes.

Usage:

```shell
python -m examples.cls_opt --epochs=5 --png=/tmp/cls_opt.png
```

Data as in `examples/fashion_mnist.py` (TFDS, or the Debian package
`dataset-fashion-mnist` offline).
"""

import os
import sys

import keras
import numpy as np
from absl import app
from absl import flags

import keras_opt
from examples import common
from examples import datasets as fashion_data
from examples import fashion_mnist

SCRIPT = "cls_opt"
CLASSES = (
    "T-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "boot",
)


def define_flags(flag_values=flags.FLAGS, **defaults):
    """Defines the flags of this script in `flag_values`."""
    defaults.setdefault("epochs", 5)
    defaults.setdefault("learning_rate", 0.05)
    common.define_flags(flag_values, **defaults)
    fashion_mnist.define_data_flags(flag_values)
    flags.DEFINE_integer("feature_dim", 2, "Dimension d of the features.",
                         flag_values=flag_values)
    flags.DEFINE_boolean(
        "assign_prototypes",
        True,
        "Before training, give classes that are alike prototypes that are "
        "alike (`OPTClassifier.assign_prototypes`), from each class's mean "
        "training image. Off: class c keeps prototype c.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "png",
        None,
        "Where to write the figure (feature_dim 2 only); defaults to "
        "<model_dir>/cls_opt_features.png, none without --model_dir.",
        flag_values=flag_values,
    )


def build_model(head, feature_dim=2, orthogonalizer="gram_schmidt",
                num_classes=10, recipe="default"):
    """A plain CNN to `feature_dim` features, then a `head`.

    `head` is `"cls_opt"` (`OPTClassifier` of `recipe`) or `"plain"`
    (`Dense`).
    """
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    features = keras.layers.Dense(feature_dim, name="features")(x)
    if head == "cls_opt":
        classifier = keras_opt.layers.OPTClassifier(
            num_classes, orthogonalizer=orthogonalizer, recipe=recipe,
            name="classifier",
        )
    else:
        classifier = keras.layers.Dense(
            num_classes, use_bias=False, name="classifier"
        )
    return keras.Model(inputs, classifier(features), name=f"{head}_head")


GAUSSIAN_DRAWS = 100


def _energies(prototypes):
    """`{"s=1": e, "s=2": e}` of the columns of `prototypes`, `(d, C)`."""
    return {
        f"s={s}": float(keras.ops.convert_to_numpy(
            keras_opt.energy.hyperspherical_energy(
                np.asarray(prototypes, "float64"), s=s)))
        for s in (1, 2)
    }


def prototype_energy(head, seed):
    """The hyperspherical energy of CLS-OPT's prototypes V, and references.

    Returns `{"prototypes", "gaussian", "regular"}`, each `{"s=1", "s=2"}`
    (`keras_opt.energy.hyperspherical_energy`): of the head's fixed
    prototypes V (`(d, C)`; R·V has the same energy), the median over
    `GAUSSIAN_DRAWS` Gaussian draws of the same shape (seeded by `seed`;
    the mean is dominated by the rare draws with two near-equal columns),
    and, for d = 2, C equally spaced directions (the minimum of every
    s > 0 on the circle; `None` otherwise).
    """
    basis = np.asarray(keras.ops.convert_to_numpy(head.basis), "float64")
    dim, count = basis.shape
    rng = np.random.default_rng(seed)
    draws = [_energies(rng.standard_normal((dim, count)))
             for _ in range(GAUSSIAN_DRAWS)]
    regular = None
    if dim == 2:
        angles = 2 * np.pi * np.arange(count) / count
        regular = _energies(np.stack([np.cos(angles), np.sin(angles)]))
    return {
        "prototypes": _energies(basis),
        "gaussian": {key: float(np.median([d[key] for d in draws]))
                     for key in draws[0]},
        "regular": regular,
    }


def class_mean_images(train_split, num_classes=10):
    """`(num_classes, 784)`: each class's mean training image."""
    sums = np.zeros((num_classes, 28 * 28))
    counts = np.zeros(num_classes)
    for images, labels in train_split.batch(5000):
        flat = images.numpy().reshape(len(labels), -1) / 255.0
        np.add.at(sums, labels.numpy(), flat)
        counts += np.bincount(labels.numpy(), minlength=num_classes)
    return sums / counts[:, None]


def features_and_directions(model, images):
    """Features of `images` and the class directions, `(d, C)`."""
    extractor = keras.Model(model.input, model.get_layer("features").output)
    features = extractor.predict(images, verbose=0)
    kernel = model.get_layer("classifier").kernel
    directions = keras.ops.convert_to_numpy(kernel)
    return features, directions


def plot_features(panels, labels, path):
    """Draws one scatter of 2-D features per head, with class directions.

    Args:
        panels: `{title: (features (N, 2), directions (2, C))}`.
        labels: Integer labels `(N,)`.
        path: Where to write the PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6 * len(panels), 6))
    FigureCanvasAgg(figure)
    colors = [f"C{k}" for k in range(10)]
    for index, (title, (features, directions)) in enumerate(panels.items()):
        axes = figure.add_subplot(1, len(panels), index + 1)
        for k in range(directions.shape[1]):
            chosen = labels == k
            axes.scatter(features[chosen, 0], features[chosen, 1], s=3,
                         color=colors[k % 10], alpha=0.5, label=CLASSES[k])
        radius = np.percentile(np.linalg.norm(features, axis=1), 95)
        unit = directions / np.linalg.norm(directions, axis=0, keepdims=True)
        for k in range(directions.shape[1]):
            axes.plot([0, radius * unit[0, k]], [0, radius * unit[1, k]],
                      color=colors[k % 10], linewidth=2.5)
        axes.set_title(title)
        axes.set_aspect("equal")
        if index == 0:
            axes.legend(markerscale=4, fontsize="small", loc="upper left")
    figure.savefig(path, dpi=100)
    return path


def write_figure(flags_obj, test_split, trained, method_name):
    """The figure of both heads' last models (d = 2); its path, or None."""
    path = flags_obj.png
    if path is None and flags_obj.model_dir:
        path = os.path.join(flags_obj.model_dir, "cls_opt_features.png")
    if not path or flags_obj.feature_dim != 2:
        return None
    test = test_split.take(2000).batch(500)
    images = np.concatenate([x.numpy() for x, _ in test]) / 255.0
    labels = np.concatenate([y.numpy() for _, y in test])
    panels = {
        f"CLS-OPT ({method_name}): x·R·V, V fixed": features_and_directions(
            trained["cls_opt"], images
        ),
        "plain Dense head": features_and_directions(trained["plain"], images),
    }
    return plot_features(panels, labels, path)


def mean_energy(energies):
    """The mean over seeds of `prototype_energy` results."""
    return {
        kind: None if energies[0][kind] is None else {
            key: float(np.mean([e[kind][key] for e in energies]))
            for key in energies[0][kind]
        }
        for kind in energies[0]
    }


def run(flags_obj, datasets=None):
    """Trains CLS-OPT and the plain head for every seed; writes the figure.

    Returns the results of `common.run_seeds` for CLS-OPT with the plain
    head's under `"compare"`, the figure's path under `"png"` and the
    prototypes' energy (`prototype_energy`, mean over seeds) under
    `"prototype_energy"` (each run has its own).
    """
    splits = fashion_mnist.load_splits(flags_obj, datasets)
    method = common.get_method(flags_obj)
    if not method.is_opt:
        raise ValueError(
            "Invalid value for flag `--method`. Expected an orthogonalizer "
            "name for the CLS-OPT head (the plain head always runs beside "
            f"it). Received: {flags_obj.method!r}"
        )
    trained = {}
    means = None
    if flags_obj.assign_prototypes:
        means = class_mean_images(splits["train"])

    def trainer(head):
        def make_model():
            trained[head] = build_model(
                head, flags_obj.feature_dim, method.orthogonalizer,
                recipe=common.get_recipe(flags_obj).name,
            )
            if head == "cls_opt" and means is not None:
                trained[head].get_layer("classifier").assign_prototypes(means)
            return trained[head]

        def train_one(flags_obj, seed, run_dir):
            record = fashion_mnist.train_classifier(
                flags_obj, seed, run_dir, make_model, splits
            )
            if head == "cls_opt":
                record["prototype_energy"] = prototype_energy(
                    trained[head].get_layer("classifier"), seed)
            return record

        return train_one

    results = common.run_seeds(flags_obj, SCRIPT, trainer("cls_opt"))
    results["prototype_energy"] = mean_energy(
        [run["prototype_energy"] for run in results["runs"]])
    model_dir = flags_obj.model_dir
    plain = common.with_overrides(
        flags_obj,
        method=common.PLAIN,
        model_dir=os.path.join(model_dir, "plain") if model_dir else None,
    )
    results["compare"] = common.run_seeds(plain, SCRIPT, trainer("plain"))
    results["png"] = write_figure(flags_obj, splits["test"], trained,
                                  method.name)
    if model_dir:
        common.write_results(results, model_dir)
    return results


def main(_):
    try:
        results = run(flags.FLAGS)
    except fashion_data.DataUnavailableError as error:
        sys.exit(f"error: {error}")
    print(common.format_results(results))
    energy = results["prototype_energy"]
    for kind in ("prototypes", "gaussian", "regular"):
        if energy[kind] is not None:
            print(f"prototype energy, {kind}: " + ", ".join(
                f"{key} {value:.4f}" for key, value in energy[kind].items()))
    if results["png"]:
        print(f"features and class directions: {results['png']}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
