"""The paper's MLP experiment, on Fashion-MNIST: a 784-256-256-10 MLP.

Liu et al. (CVPR 2021) report MLPs on MNIST; MNIST is not available offline
here (no Debian package, no network), so this script trains the same MLP on
Fashion-MNIST, which has MNIST's format (28×28 grey images, 10 classes, 60k
train / 10k test). The two hidden layers are OPT layers of `--method` (or
plain layers / a baseline, see `examples/common.py`); the classifier is
plain, as in the paper. Data and validation split as in
`examples/fashion_mnist.py`.

Usage:

```shell
python -m examples.mlp --method=gs --seeds=0,1,2 --model_dir=/tmp/mlp
```
"""

import sys

import keras
from absl import app
from absl import flags

from examples import common
from examples import datasets as fashion_data
from examples import fashion_mnist

SCRIPT = "mlp"


def define_flags(flag_values=flags.FLAGS, **defaults):
    """Defines the flags of this script in `flag_values`."""
    defaults.setdefault("epochs", 10)
    common.define_flags(flag_values, **defaults)
    fashion_mnist.define_data_flags(flag_values)
    flags.DEFINE_list(
        "hidden_units",
        ["256", "256"],
        "Widths of the hidden layers.",
        flag_values=flag_values,
    )


def build_model(method, hidden_units=(256, 256), opt_kwargs=None,
                num_classes=10):
    """An MLP with hidden layers of `method` and a plain classifier."""
    if isinstance(method, str):
        method = common.get_method(method)
    kwargs = {"activation": "relu"}
    if method.is_opt:
        kwargs.update(opt_kwargs or {})
    layers = [keras.Input((28, 28, 1)), keras.layers.Flatten()]
    layers += [method.dense(int(units), **kwargs) for units in hidden_units]
    layers.append(method.dense(num_classes, classifier=True))
    return keras.Sequential(layers, name=f"{method.name}_mlp")


def run(flags_obj, datasets=None):
    """Trains and evaluates the MLP for every seed; see `common.run_seeds`.

    `datasets` is as for `examples.fashion_mnist.run`.
    """
    splits = fashion_mnist.load_splits(flags_obj, datasets)

    def train_one(flags_obj, seed, run_dir):
        def make_model():
            return build_model(
                common.get_method(flags_obj),
                flags_obj.hidden_units,
                common.opt_layer_kwargs(flags_obj),
            )

        return fashion_mnist.train_classifier(
            flags_obj, seed, run_dir, make_model, splits
        )

    return common.run_seeds(flags_obj, SCRIPT, train_one)


def main(_):
    try:
        print(common.format_results(run(flags.FLAGS)))
    except fashion_data.DataUnavailableError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
