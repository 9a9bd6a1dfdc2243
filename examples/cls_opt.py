"""CLS-OPT on Fashion-MNIST: an OPT classifier head on 2-D features.

A small plain CNN ends in a `--feature_dim`-dimensional feature layer (2 by
default, so that features can be drawn); the classifier on top is CLS-OPT,
`keras_opt.layers.OPTClassifier` (logits x·R·V: fixed random class
prototypes V, a learned orthogonal R), with the orthogonalizer of
`--method`. The same network with a plain `Dense` head is trained beside it
with the same recipe. The script writes the slides' "visualization" figure:
test features coloured by class, with the class directions (the columns of
R·V, or of the Dense kernel) drawn from the origin, one panel per head.

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


def run(flags_obj, datasets=None):
    """Trains CLS-OPT and the plain head for every seed; writes the figure.

    Returns the results of `common.run_seeds` for CLS-OPT with the plain
    head's under `"compare"` and the figure's path under `"png"`.
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

    def trainer(head):
        def make_model():
            trained[head] = build_model(
                head, flags_obj.feature_dim, method.orthogonalizer,
                recipe=common.get_recipe(flags_obj).name,
            )
            return trained[head]

        def train_one(flags_obj, seed, run_dir):
            return fashion_mnist.train_classifier(
                flags_obj, seed, run_dir, make_model, splits
            )

        return train_one

    results = common.run_seeds(flags_obj, SCRIPT, trainer("cls_opt"))
    model_dir = flags_obj.model_dir
    plain = common.with_overrides(
        flags_obj,
        method=common.PLAIN,
        model_dir=os.path.join(model_dir, "plain") if model_dir else None,
    )
    results["compare"] = common.run_seeds(plain, SCRIPT, trainer("plain"))
    path = flags_obj.png
    if path is None and model_dir:
        path = os.path.join(model_dir, "cls_opt_features.png")
    results["png"] = None
    if path and flags_obj.feature_dim == 2:
        test = splits["test"].take(2000).batch(500)
        images = np.concatenate([x.numpy() for x, _ in test]) / 255.0
        labels = np.concatenate([y.numpy() for _, y in test])
        panels = {
            f"CLS-OPT ({method.name}): x·R·V, V fixed": features_and_directions(
                trained["cls_opt"], images
            ),
            "plain Dense head": features_and_directions(
                trained["plain"], images
            ),
        }
        results["png"] = plot_features(panels, labels, path)
    if model_dir:
        common.write_results(results, model_dir)
    return results


def main(_):
    try:
        results = run(flags.FLAGS)
    except fashion_data.DataUnavailableError as error:
        sys.exit(f"error: {error}")
    print(common.format_results(results))
    if results["png"]:
        print(f"features and class directions: {results['png']}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
