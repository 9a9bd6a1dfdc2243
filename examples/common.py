"""What the example scripts share: flags, methods, optimizer, callbacks, seeds.

Every script follows the TensorFlow Model Garden pattern:

```python
def define_flags(flag_values=flags.FLAGS):
    common.define_flags(flag_values, epochs=..., ...)  # shared flags
    flags.DEFINE_...(..., flag_values=flag_values)    # its own

def run(flags_obj) -> dict:  # trains every seed, writes results.json
    return common.run_seeds(flags_obj, "script_name", train_one)

def main(_):
    print(common.format_results(run(flags.FLAGS)))
```

`--method` is `plain`, an orthogonalizer name of
`keras_opt.orthogonalizers.ALIASES` (OPT layers; `or`/`penalty` and
`upt`/`unconstrained` are the paper's OR and UPT baselines) or a plain
baseline of `keras_opt.baselines` (`orthogonal`, `srip`, `mhe`, `hs_mhe`).
The FN ablation (trainable neurons V) is `--trainable_basis` with any OPT
method. `--recipe` is a preset of `keras_opt.recipes` (`default`, or
`official`, the released code's parameterization): the OPT layers get it,
and the Stiefel step's default learning rate is its factor.

Recipe flags (how OPT layers are initialized and trained) are defined in
`define_recipe_flags` and turned into OPT-layer arguments by
`opt_layer_kwargs`; add new ones there, and every script gets them.
"""

import contextlib
import json
import math
import os
import time
import types

import keras
import numpy as np
from absl import flags

import keras_opt

PLAIN = "plain"
PLAIN_BASELINES = ("orthogonal", "srip", "mhe", "hs_mhe")
METHODS = (PLAIN,) + tuple(sorted(keras_opt.orthogonalizers.ALIASES)) + (
    PLAIN_BASELINES
)


def _keeps_rotation_orthogonal(name):
    orthogonalizer = keras_opt.orthogonalizers.get(name)
    # An exact map, or OGD, whose Stiefel optimizer keeps R (= P) orthogonal.
    return orthogonalizer.is_exact or orthogonalizer.is_stiefel


# OPT methods whose R is orthogonal up to float round-off (the scripts use
# a Stiefel optimizer, so this includes OGD), from the registry's flags.
EXACT_METHODS = tuple(
    name
    for name in sorted(keras_opt.orthogonalizers.ALIASES)
    if _keeps_rotation_orthogonal(name)
)
RESULTS_FILE = "results.json"


def _rotation_factors_text():
    """`--rotation_learning_rate`'s default, by recipe, for its help."""
    texts = []
    for name in keras_opt.recipes.names():
        recipe = keras_opt.recipes.get(name)
        sgd, adam = (
            recipe.rotation_learning_rate_factor(cls)
            for cls in (keras_opt.optimizers.StiefelSGD,
                        keras_opt.optimizers.StiefelAdam)
        )
        texts.append(f"--recipe={name}: {sgd:g}× for --optimizer=sgd "
                     f"(StiefelSGD), {adam:g}× for adam (StiefelAdam)")
    return "; ".join(texts)


def define_flags(flag_values=flags.FLAGS, **defaults):
    """Defines the flags every example script shares in `flag_values`.

    Args:
        flag_values: the `absl.flags.FlagValues` to define them in.
        **defaults: per-script default values, by flag name (e.g.
            `epochs=200, optimizer="adam"`).
    """
    fv = flag_values
    default = defaults.pop  # default(name, value): the script's, or value
    flags.DEFINE_enum(
        "method",
        default("method", "gram_schmidt"),
        METHODS,
        "plain (plain Keras layers), an orthogonalizer name (OPT layers; "
        "or/penalty = OR, upt/unconstrained = UPT) or a plain baseline of "
        "keras_opt.baselines (orthogonal, srip, mhe, hs_mhe).",
        flag_values=fv,
    )
    flags.DEFINE_list(
        "seeds",
        default("seeds", None),
        "Comma-separated random seeds, one training run each; results.json "
        "reports mean ± std over them. Defaults to [--seed].",
        flag_values=fv,
    )
    flags.DEFINE_integer("seed", default("seed", 0), "Random seed.",
                         flag_values=fv)
    flags.DEFINE_string(
        "model_dir",
        default("model_dir", None),
        "If set: TensorBoard logs (with energy and orthogonality), "
        "checkpoints and results.json go here, one seed_<n>/ per seed.",
        flag_values=fv,
    )
    define_training_flags(fv, defaults)
    define_run_flags(fv, defaults)
    define_strategy_flags(fv, defaults)
    define_recipe_flags(fv, defaults)
    if defaults:
        raise ValueError(
            "Invalid flag defaults. Expected names of flags defined by "
            f"examples.common. Received: {sorted(defaults)}"
        )


def define_training_flags(flag_values, defaults):
    """Epochs, batch size and the optimizer's flags; pops their defaults."""
    fv = flag_values
    default = defaults.pop  # default(name, value): the script's, or value
    flags.DEFINE_integer("epochs", default("epochs", 2), "Training epochs.",
                         flag_values=fv)
    flags.DEFINE_integer("batch_size", default("batch_size", 128),
                         "Batch size.", flag_values=fv)
    flags.DEFINE_enum(
        "optimizer",
        default("optimizer", "sgd"),
        ["sgd", "adam"],
        "keras_opt.optimizers.StiefelSGD or StiefelAdam (stock SGD/Adam on "
        "every variable that is not a Stiefel-tagged rotation).",
        flag_values=fv,
    )
    flags.DEFINE_float("learning_rate", default("learning_rate", 0.1),
                       "Learning rate.", flag_values=fv)
    flags.DEFINE_integer(
        "cosine_decay_steps",
        default("cosine_decay_steps", 0),
        "If positive, the learning rate follows a cosine decay from "
        "--learning_rate to 0 over this many steps (and the Stiefel step's "
        "default rate with it); 0 keeps it constant.",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "rotation_learning_rate",
        default("rotation_learning_rate", None),
        "Learning rate of the Stiefel step, which trains only the rotations "
        "R of --method=ogd/stiefel (every other variable, the P of the "
        "other OPT methods included, gets --learning_rate). Defaults to the "
        "recipe's factor times --learning_rate (following its schedule): "
        f"{_rotation_factors_text()}.",
        flag_values=fv,
    )
    flags.DEFINE_float("momentum", default("momentum", 0.9),
                       "Momentum of StiefelSGD.", flag_values=fv)
    flags.DEFINE_boolean(
        "use_group_form",
        default("use_group_form", True),
        "Take the Stiefel step of square rotations in the orthogonal-group "
        "form (4 d×d products); --nouse_group_form computes the official "
        "formula (6).",
        flag_values=fv,
    )
    flags.DEFINE_float(
        "weight_decay",
        default("weight_decay", None),
        "Decoupled weight decay of the optimizer (Keras `weight_decay`).",
        flag_values=fv,
    )


def define_run_flags(flag_values, defaults):
    """Step limit, monitoring and verbosity flags; pops their defaults."""
    fv = flag_values
    default = defaults.pop  # default(name, value): the script's, or value
    flags.DEFINE_integer(
        "max_steps_per_epoch",
        default("max_steps_per_epoch", 0),
        "If positive, train on at most this many batches per epoch.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "monitor_every",
        default("monitor_every", 1),
        "Measure each layer's energy and orthogonality every this many "
        "epochs (and at the first and last); the epochs between repeat the "
        "latest values.",
        flag_values=fv,
    )
    flags.DEFINE_boolean(
        "rotation_steps",
        default("rotation_steps", False),
        "Log, per epoch, how far each OPT layer's rotation moved "
        "(rotation_step/<layer>: ‖R_t − R_t−1‖_F), its distance from the "
        "identity (rotation_distance/<layer>: ‖R − I‖_F) and its mean gain "
        "(gain/<layer>), into results.json's history.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "verbose",
        default("verbose", 1),
        "model.fit verbosity: 0, 1 (progress bar) or 2 (a line per epoch).",
        flag_values=fv,
    )


def define_strategy_flags(flag_values, defaults):
    """The distribution flags, as the TensorFlow Model Garden names them."""
    from keras_opt import distribute

    flags.DEFINE_enum(
        "strategy",
        defaults.pop("strategy", "default"),
        distribute.STRATEGIES,
        "tf.distribute strategy (keras_opt.distribute.get_strategy): one "
        "device, MirroredStrategy, MultiWorkerMirroredStrategy (workers "
        "from TF_CONFIG) or TPUStrategy.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_workers",
        defaults.pop("num_workers", None),
        "With --strategy=multi_worker: the number of workers TF_CONFIG must "
        "list (checked).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "tpu",
        defaults.pop("tpu", None),
        "With --strategy=tpu: the TPU address.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "training_loop",
        defaults.pop("training_loop", "auto"),
        ["auto", "fit", "custom"],
        "auto: model.fit, except under multi_worker (where Keras 3 fit "
        "fails on TF 2.21) the fault-tolerant keras_opt.distribute.train "
        "loop; fit or custom force one.",
        flag_values=flag_values,
    )


_STRATEGY_CACHE = {}


def get_strategy(flags_obj):
    """The `tf.distribute` strategy of `--strategy`, made once per process.

    `None` for `default` on a backend other than TensorFlow.
    """
    name = getattr(flags_obj, "strategy", "default")
    if name == "default" and keras.backend.backend() != "tensorflow":
        return None
    key = (name, getattr(flags_obj, "num_workers", None),
           getattr(flags_obj, "tpu", None))
    if key not in _STRATEGY_CACHE:
        from keras_opt import distribute

        _STRATEGY_CACHE[key] = distribute.get_strategy(
            name, num_workers=key[1], tpu_address=key[2]
        )
    return _STRATEGY_CACHE[key]


def strategy_scope(strategy):
    """`strategy.scope()`, or a no-op context without a strategy."""
    if strategy is None:
        return contextlib.nullcontext()
    return strategy.scope()


def training_loop(flags_obj, strategy):
    """`"fit"` or `"custom"`, from `--training_loop` and the strategy."""
    loop = getattr(flags_obj, "training_loop", "auto")
    if loop != "auto":
        return loop
    if strategy is None:
        return "fit"
    from keras_opt import distribute

    return "fit" if distribute.training_path(strategy) == "fit" else "custom"


class LoopHistory:
    """What `run_record` reads from a `History`, for the custom loop."""

    def __init__(self, history):
        self.history = history
        self.epoch = list(range(len(next(iter(history.values()), []))))


def train_custom_loop(
    flags_obj, model, dataset_fn, run_dir, callbacks, epochs,
    steps_per_epoch=None,
):
    """Trains `model` with `keras_opt.distribute.train`; returns its history.

    Checkpoints every 100 steps go to `<run_dir>/checkpoints`, so a rerun
    resumes (and one after the last step trains nothing).

    Returns:
        A `LoopHistory` with `train_time_s`.
    """
    from keras_opt import distribute

    checkpoint_dir = os.path.join(run_dir, "checkpoints") if run_dir else None
    with Timer() as timer:
        logs = distribute.train(
            model,
            dataset_fn,
            epochs,
            steps_per_epoch=steps_per_epoch,
            checkpoint_dir=checkpoint_dir,
            save_every=100 if checkpoint_dir else None,
            verbose=int(flags_obj.verbose > 0),
            callbacks=callbacks,
        )
    history = LoopHistory(logs)
    history.train_time_s = timer.seconds
    return history


def define_recipe_flags(flag_values, defaults):
    """Defines the flags that set how OPT layers are made and trained.

    Pops the default of each flag it defines from `defaults`. The flags are
    turned into layer arguments by `opt_layer_kwargs` (and `get_method`).
    """
    flags.DEFINE_enum(
        "recipe",
        defaults.pop("recipe", keras_opt.recipes.DEFAULT.name),
        keras_opt.recipes.names(),
        "The OPT layers' recipe (keras_opt.recipes): default (P at the "
        "map's identity point, a gain per neuron, equal first steps, no "
        "decay on P) or official (the released code's: P ~ N(0, 1), no "
        "gain, the network's weight decay on P). It also sets the Stiefel "
        "step's default learning rate (--rotation_learning_rate).",
        flag_values=flag_values,
    )
    flags.DEFINE_boolean(
        "trainable_basis",
        defaults.pop("trainable_basis", False),
        "Train the neurons V too (the paper's FN ablation, FN ✗).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "block_size",
        defaults.pop("block_size", None),
        "Block-diagonal rotations with blocks of at most this many "
        "coordinates (`block_size` of the OPT layers); unset: one d×d "
        "rotation per layer.",
        lower_bound=1,
        flag_values=flag_values,
    )


def get_recipe(flags_obj):
    """The `keras_opt.recipes.Recipe` of `--recipe` (the default without)."""
    return keras_opt.recipes.get(
        getattr(flags_obj, "recipe", keras_opt.recipes.DEFAULT.name)
    )


def opt_layer_kwargs(flags_obj):
    """Keyword arguments of every OPT layer, from the recipe flags."""
    kwargs = {
        "trainable_basis": flags_obj.trainable_basis,
        "recipe": get_recipe(flags_obj).name,
    }
    if getattr(flags_obj, "block_size", None) is not None:
        kwargs["block_size"] = flags_obj.block_size
    return kwargs


def get_method(flags_obj):
    """The `keras_opt.baselines.Baseline` of `--method` (or of a name).

    Its OPT layers have the recipe of `--recipe`.
    """
    if isinstance(flags_obj, str):
        name, recipe = flags_obj, keras_opt.recipes.DEFAULT
    else:
        name, recipe = flags_obj.method, get_recipe(flags_obj)
    return keras_opt.baselines.get(
        "baseline" if name == PLAIN else name, recipe=recipe.name
    )


def seeds(flags_obj):
    """The seeds to run: `--seeds`, or `[--seed]`."""
    if not flags_obj.seeds:
        return [flags_obj.seed]
    try:
        return [int(seed) for seed in flags_obj.seeds]
    except ValueError:
        raise ValueError(
            "Invalid value for flag `--seeds`. Expected comma-separated "
            f"integers. Received: {','.join(flags_obj.seeds)}"
        ) from None


def with_overrides(flags_obj, **overrides):
    """A copy of the flag values as a namespace, with `overrides` applied."""
    if isinstance(flags_obj, flags.FlagValues):
        values = flags_obj.flag_values_dict()
    else:
        values = dict(vars(flags_obj))
    values.update(overrides)
    return types.SimpleNamespace(**values)


def learning_rate(flags_obj, factor=1.0):
    """`factor` × `--learning_rate`, cosine-decayed with the flag."""
    rate = factor * flags_obj.learning_rate
    if flags_obj.cosine_decay_steps > 0:
        return keras.optimizers.schedules.CosineDecay(
            rate, flags_obj.cosine_decay_steps
        )
    return rate


def rotation_learning_rate(flags_obj, optimizer_class):
    """The Stiefel step's rate: the flag, else the recipe's factor × lr.

    `None` (the optimizer's own default, which follows the learning rate's
    schedule) when the recipe's factor is the optimizer's.
    """
    if flags_obj.rotation_learning_rate is not None:
        return flags_obj.rotation_learning_rate
    factor = get_recipe(flags_obj).rotation_learning_rate_factor(
        optimizer_class
    )
    if factor == optimizer_class.default_rotation_learning_rate_factor:
        return None
    return learning_rate(flags_obj, factor)


def build_optimizer(flags_obj):
    """StiefelSGD or StiefelAdam, from the optimizer and recipe flags."""
    if flags_obj.optimizer == "sgd":
        cls = keras_opt.optimizers.StiefelSGD
        kwargs = {"momentum": flags_obj.momentum}
    else:
        cls, kwargs = keras_opt.optimizers.StiefelAdam, {}
    return cls(
        learning_rate=learning_rate(flags_obj),
        rotation_learning_rate=rotation_learning_rate(flags_obj, cls),
        weight_decay=flags_obj.weight_decay,
        use_group_form=flags_obj.use_group_form,
        **kwargs,
    )


class TestMetrics(keras.callbacks.Callback):
    """Evaluates held-out data at every epoch end into `logs["test_*"]`.

    Put it before `TensorBoard` in `callbacks=[...]` (the keras_opt
    monitors put themselves first). `seconds` adds up the time spent
    evaluating, so that a script can report its training time without it.

    Args:
        **evaluate_kwargs: what `model.evaluate` gets (`x`, `y`,
            `sample_weight`, `batch_size`, ...).
    """

    def __init__(self, **evaluate_kwargs):
        super().__init__()
        self.evaluate_kwargs = evaluate_kwargs
        self.seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        with Timer() as timer:
            results = self.model.evaluate(
                verbose=0, return_dict=True, **self.evaluate_kwargs
            )
        self.seconds += timer.seconds
        for key, value in results.items():
            logs[f"test_{key}"] = value


class RotationSteps(keras.callbacks.Callback):
    """Logs each OPT layer's rotation step, distance from I and mean gain.

    At every epoch end, into `logs`: `rotation_step/<layer>` =
    ‖R_t − R_(t−1)‖_F (R_(−1) = R at the start of training),
    `rotation_distance/<layer>` = ‖R − I‖_F and `gain/<layer>` = the mean
    of the gains g. `--rotation_steps` adds it.
    """

    def on_train_begin(self, logs=None):
        self.previous = {layer.name: self._rotation(layer)
                         for layer in keras_opt.layers.opt_layers(self.model)}

    @staticmethod
    def _rotation(layer):
        return np.asarray(keras.ops.convert_to_numpy(layer.rotation),
                          np.float64)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for layer in keras_opt.layers.opt_layers(self.model):
            rotation = self._rotation(layer)
            previous = self.previous[layer.name]
            logs[f"rotation_step/{layer.name}"] = float(
                np.linalg.norm(rotation - previous))
            logs[f"rotation_distance/{layer.name}"] = float(
                np.linalg.norm(rotation - np.eye(len(rotation))))
            logs[f"gain/{layer.name}"] = float(np.mean(
                keras.ops.convert_to_numpy(layer.gain)))
            self.previous[layer.name] = rotation


def tensorboard_available():
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return keras.backend.backend() == "tensorflow"


def make_callbacks(
    flags_obj,
    run_dir,
    test_metrics=None,
    extra=(),
    save_best_only=False,
    write_graph=True,
):
    """The callbacks of one training run, in the order Keras needs.

    Test metrics and the energy/orthogonality monitors write into `logs`
    first; then the method's own callbacks (the SRIP scheduler) and `extra`
    (early stopping); then, with a `run_dir`, TensorBoard (when it is
    available) and a checkpoint of the weights after every epoch (or, with
    `save_best_only`, whenever the validation loss improves). TensorBoard
    draws the model's graph from its config unless `write_graph=False`.
    """
    callbacks = []
    if test_metrics is not None:
        callbacks.append(test_metrics)
    if getattr(flags_obj, "rotation_steps", False):
        callbacks.append(RotationSteps())
    callbacks += [
        keras_opt.callbacks.EnergyMonitor(
            include_plain_layers=True, frequency=flags_obj.monitor_every
        ),
        keras_opt.callbacks.OrthogonalityMonitor(
            frequency=flags_obj.monitor_every
        ),
    ]
    callbacks += get_method(flags_obj).callbacks()
    callbacks += list(extra)
    if run_dir:
        if tensorboard_available():
            callbacks.append(
                keras.callbacks.TensorBoard(run_dir, write_graph=write_graph)
            )
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                os.path.join(run_dir, "checkpoint.weights.h5"),
                save_weights_only=True,
                save_best_only=save_best_only,
            )
        )
    return callbacks


def loop_callbacks(flags_obj, run_dir, strategy, extra=()):
    """The callbacks of a `keras_opt.distribute.train` run.

    Those of `make_callbacks` without the per-epoch test metrics and the
    weights checkpoint (`train` saves its own checkpoints), and TensorBoard
    on the chief worker only: every worker runs the callbacks.
    """
    chief = strategy is None or strategy.extended.should_checkpoint
    callbacks = make_callbacks(
        flags_obj, run_dir if chief else None, extra=extra
    )
    return [
        callback
        for callback in callbacks
        if not isinstance(callback, keras.callbacks.ModelCheckpoint)
    ]


def jsonable(value):
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return jsonable(value.tolist())
    if hasattr(value, "numpy") or hasattr(value, "__array__"):
        return jsonable(np.asarray(value).tolist())
    return value


def run_record(history, seed, train_time_s, **metrics):
    """One seed's entry of results.json, from `fit`'s `History`.

    Args:
        history: the `keras.callbacks.History` of the run.
        seed: its seed.
        train_time_s: seconds spent in `fit`.
        **metrics: final numbers (`val_accuracy`, `test_accuracy`, ...).
    """
    logs = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    orthogonality = {
        key.split("/", 1)[1]: values[-1]
        for key, values in logs.items()
        if key.startswith("orthogonality/")
    }
    energy = {
        key.split("/", 1)[1]: [values[0], values[-1]]
        for key, values in logs.items()
        if key.startswith("energy/")
    }
    return {
        "seed": seed,
        **{k: jsonable(v) for k, v in metrics.items()},
        "epochs_run": len(history.epoch),
        "train_time_s": train_time_s,
        "orthogonality_errors": orthogonality,
        "energy_first_last": energy,
        "history": logs,
    }


def mean_std(values):
    """`{"mean", "std" (ddof = 0), "values"}` of the non-None `values`."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "values": [float(v) for v in values],
    }


def run_seeds(flags_obj, script, train_one):
    """Runs `train_one` for every seed and writes `results.json`.

    Args:
        flags_obj: the flag values.
        script: the script's name, recorded in the results.
        train_one: `train_one(flags_obj, seed, run_dir) -> dict`, which
            trains one model (after `keras.utils.set_random_seed(seed)`)
            and returns `run_record(...)`; `run_dir` is
            `<model_dir>/seed_<seed>` or `None`.

    Returns:
        The results: `script`, `method`, `flags`, `seeds`, `runs` (one
        `run_record` per seed) and `summary` (mean, std and values over
        seeds of `val_accuracy`, `test_accuracy` and `train_time_s`).
    """
    model_dir = flags_obj.model_dir
    runs = []
    for seed in seeds(flags_obj):
        run_dir = os.path.join(model_dir, f"seed_{seed}") if model_dir else None
        if run_dir:
            os.makedirs(run_dir, exist_ok=True)
        keras.backend.clear_session()  # same layer names for every seed
        keras.utils.set_random_seed(seed)
        runs.append(train_one(flags_obj, seed, run_dir))
    if isinstance(flags_obj, flags.FlagValues):
        flag_dict = flags_obj.flag_values_dict()
    else:
        flag_dict = dict(vars(flags_obj))
    results = {
        "script": script,
        "method": flags_obj.method,
        "recipe": get_recipe(flags_obj).name,
        "backend": keras.backend.backend(),
        "flags": jsonable(flag_dict),
        "seeds": [run["seed"] for run in runs],
        "runs": runs,
        "summary": {
            key: mean_std([run.get(key) for run in runs])
            for key in ("val_accuracy", "test_accuracy", "train_time_s")
        },
    }
    if model_dir:
        write_results(results, model_dir)
    return results


def write_results(results, model_dir):
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, RESULTS_FILE)
    with open(path, "w") as f:
        json.dump(jsonable(results), f, indent=1, allow_nan=True)
    return path


def format_mean_std(stats, scale=1.0, digits=4):
    if stats is None:
        return "n/a"
    mean, std = stats["mean"] * scale, stats["std"] * scale
    if len(stats["values"]) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_results(results):
    """The report a script prints at the end."""
    summary = results["summary"]
    lines = [
        f"{results['script']} --method={results['method']}, seeds "
        f"{results['seeds']}: test accuracy "
        f"{format_mean_std(summary['test_accuracy'])}, validation accuracy "
        f"{format_mean_std(summary['val_accuracy'])}"
    ]
    for run in results["runs"]:
        lines.append(
            f"  seed {run['seed']}: test {run['test_accuracy']:.4f}, "
            f"{run['epochs_run']} epochs in {run['train_time_s']:.1f} s"
        )
        for name, error in run["orthogonality_errors"].items():
            first, last = run["energy_first_last"].get(name, [math.nan] * 2)
            lines.append(
                f"    {name}: max|RᵀR − I| {error:.3g}, energy "
                f"{first:.6g} → {last:.6g}"
            )
    if "compare" in results:
        plain = results["compare"]["summary"]["test_accuracy"]
        lines.append(
            f"plain network, same recipe: test accuracy "
            f"{format_mean_std(plain)} (OPT {results['method']}: "
            f"{format_mean_std(summary['test_accuracy'])})"
        )
    return "\n".join(lines)


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
