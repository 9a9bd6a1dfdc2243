"""Experiment: block layers whose permutation Π is redrawn every N steps.

Usage (from the repository root):

    .venv/bin/python benchmarks/block_episodes.py --task=gcn --every=25 \\
        -- --method=gs --block_size=8 --seeds=0,1,2 --verbose=0

Runs `examples.<task>` (its `run`, with the flags after `--`) with one more
callback: `keras_opt.callbacks.SubspaceEpisodes(--every)`, which every N
optimizer steps makes each block layer merge its rotation into its basis
(V ← R·V), draw the next permutation Π and reset P and its optimizer state
(`keras_opt.layers.blocks.next_episode`): the function is unchanged, and
over the episodes every pair of coordinates can share a block. With
`--keep_permutation` (an ablation) the merge and reset happen but Π stays,
so the rotation stays block-diagonal on one Π: what is left of the gain is
the reset, not the new pairs. A measurement for issue 18, run as a variant
by `benchmarks/block_size_benchmark.py --episodes=b:n`.
"""

import argparse
import importlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
from absl import flags  # noqa: E402

import keras_opt  # noqa: E402
from examples import common  # noqa: E402
from keras_opt.layers import blocks  # noqa: E402
from keras_opt.optimizers import slots  # noqa: E402


class MergeOnly(keras_opt.callbacks.SubspaceEpisodes):
    """The ablation: episodes that merge and reset but keep Π."""

    def on_train_batch_end(self, batch, logs=None):
        found = [
            layer
            for layer in keras_opt.layers.opt_layers(self.model)
            if layer.block_size is not None
        ]
        ended = min(int(layer.block_episode) for layer in found)
        if self._due() <= ended:
            return
        for layer in found:
            merged = blocks.kernel(layer)
            permutation = keras.ops.copy(layer.block_permutation)
            layer.next_episode()
            layer.block_permutation.assign(permutation)
            layer.basis.assign(blocks.transpose_times(layer, merged))
            slots.reset_slots(self.model.optimizer, [layer.rotation_parameter])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="gcn")
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--keep_permutation", action="store_true")
    parser.add_argument("example_flags", nargs="*")
    args = parser.parse_args()
    module = importlib.import_module(f"examples.{args.task}")
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    flag_values(["prog"] + args.example_flags)
    make_callbacks = common.make_callbacks
    episodes = MergeOnly if args.keep_permutation else (
        keras_opt.callbacks.SubspaceEpisodes
    )

    def with_episodes(*positional, extra=(), **keywords):
        return make_callbacks(
            *positional,
            extra=list(extra) + [episodes(args.every)],
            **keywords,
        )

    common.make_callbacks = with_episodes
    print(common.format_results(module.run(flag_values)))


if __name__ == "__main__":
    main()
