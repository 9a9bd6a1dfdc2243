"""Experiment: block layers whose permutation Π is redrawn every N steps.

Usage (from the repository root):

    .venv/bin/python benchmarks/block_episodes.py --task=gcn --every=25 \\
        -- --method=gs --block_size=8 --seeds=0,1,2 --verbose=0

Runs `examples.<task>` (its `run`, with the flags after `--`) and adds one
callback to its callbacks: every `--every` optimizer steps, each OPT layer
with `block_size` merges its rotation into its basis (V ← R·V), draws a new
permutation Π, resets P to the map's identity point (V ← R₀ᵀ·V where
`R₀ = map(P₀)` is not I, as Householder's) and the optimizer state of P,
so the network computes the same function before and after, as S-OPT's
episodes do (`keras_opt.layers.subspace`). Over the episodes every pair of
coordinates can share a block. This is a measurement for issue 18 (does
redrawing Π earn its place?), not a library feature; see
`benchmarks/block_size_benchmark.py`, which runs it as a variant.
"""

import argparse
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from examples import common  # noqa: E402
from keras_opt import layers  # noqa: E402
from keras_opt.layers import blocks  # noqa: E402
from keras_opt.optimizers import slots  # noqa: E402


def next_block_episode(layer, rng, optimizer):
    """Merge R into V, redraw Π, reset P (and its slots); W is unchanged."""
    merged = blocks.kernel(layer)
    layout = layer.block_layout
    start = layer.orthogonalizer.rotation_initializer(
        (layout.storage, layout.storage), layer.rotation_parameter.dtype
    )
    layer.rotation_parameter.assign(
        keras.ops.broadcast_to(start, layer.rotation_parameter.shape)
    )
    permutation = rng.permutation(layer.basis.shape[0]).astype("int32")
    layer.block_permutation.assign(permutation)
    layer.basis.assign(blocks.transpose_times(layer, merged))
    slots.reset_slots(optimizer, [layer.rotation_parameter])


class BlockEpisodes(keras.callbacks.Callback):
    def __init__(self, every_n_steps, seed):
        super().__init__()
        self.every_n_steps = every_n_steps
        self.rng = np.random.default_rng(seed)

    def on_train_batch_end(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step % self.every_n_steps:
            return
        for layer in layers.opt_layers(self.model):
            if layer.block_size is not None:
                next_block_episode(layer, self.rng, self.model.optimizer)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="gcn")
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("example_flags", nargs="*")
    args = parser.parse_args()
    module = importlib.import_module(f"examples.{args.task}")
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    flag_values(["prog"] + args.example_flags)
    make_callbacks = common.make_callbacks

    def with_episodes(*positional, extra=(), **keywords):
        # Numpy's global state is seeded per run by `common.run_seeds`.
        episodes = BlockEpisodes(args.every, np.random.randint(2**31))
        return make_callbacks(
            *positional, extra=list(extra) + [episodes], **keywords
        )

    common.make_callbacks = with_episodes
    print(common.format_results(module.run(flag_values)))


if __name__ == "__main__":
    main()
