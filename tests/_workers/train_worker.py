"""Trains `common.make_model` models with keras_opt.distribute.train.

Run as `python tests/_workers/train_worker.py '<json>'` from the repository
root, with TF_CONFIG set for the "multi_worker" strategy. Keys: strategy,
kinds, epochs, out (a directory: one `<tag>_<kind>.npz` per model), and
optionally checkpoint_dir (one subdirectory per kind), save_every, sleep.
"""

import json
import os
import sys

sys.path.insert(
    0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)

import numpy as np  # noqa: E402

from keras_opt import distribute  # noqa: E402
from tests._workers import common  # noqa: E402


def main(config):
    strategy = distribute.get_strategy(config["strategy"])
    resolver = getattr(strategy, "cluster_resolver", None)
    tag = f"worker{resolver.task_id}" if resolver is not None else "single"
    for kind in config["kinds"]:
        with strategy.scope():
            model = common.make_model(kind)
        checkpoint_dir = config.get("checkpoint_dir")
        history = distribute.train(
            model,
            common.make_dataset_fn(sleep=config.get("sleep", 0.0)),
            epochs=config["epochs"],
            checkpoint_dir=checkpoint_dir and os.path.join(checkpoint_dir, kind),
            save_every=config.get("save_every"),
            callbacks=common.make_callbacks(kind),
        )
        result = common.summary(model, history)
        np.savez(
            os.path.join(config["out"], f"{tag}_{kind}.npz"),
            iterations=result["iterations"],
            orthogonality=np.asarray(result["orthogonality"]),
            loss=np.asarray(result["loss"]),
            episodes=np.asarray(result["episodes"], "int64"),
            energy=np.asarray(result["energy"]),
            training_path=distribute.training_path(strategy),
            **{f"w{i}": w for i, w in enumerate(result["weights"])},
        )


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
