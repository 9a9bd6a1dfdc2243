"""Where generalization limits accuracy: the main-job network on 5,000 images.

OPT's claim is better generalization. On the full Fashion-MNIST training set
a 10-epoch run measures mostly how fast a network fits. Here the main-job
network (`examples.fashion_mnist.build_model`) trains on the first
`--train_size` (5,000) training images until it fits them (`--epochs`,
with the learning rate decayed to 0 on a cosine), so
that held-out accuracy is limited by generalization, and every method gets
the same tuning budget, decided on validation data only:

1. **Tuning.** For every method of `--methods` and every point of the grid
   `--learning_rates` × `--weight_decays`, train on each `--tuning_seeds`
   seed; the point with the best mean validation accuracy is the method's.
2. **Evaluation.** Train every method at its point on each `--seeds` seed
   and evaluate the test split. In every run the weights of the epoch with
   the best validation accuracy are kept (`select_best`).
3. **Comparison.** Each OPT method against the plain network: the mean of
   the per-seed test-accuracy differences and its 95 % Student-t interval
   (`examples/stats.py`); better or worse only when it excludes 0.

The validation split is the last `--validation_size` (5,000) training
images, as in the main job; the test split is the full test set. The
results go to `--output` (JSON, with every run's numbers and the protocol)
and, with a `--model_dir`, every run's `results.json` below it;
`python -m examples.reproduce` renders `docs/small_data.json` as a section
of docs/results.md.

Usage:

```shell
python -m examples.small_data --output=docs/small_data.json \\
    --model_dir=/tmp/small_data                                # full run
python -m examples.small_data --methods=plain,gs --seeds=0 \\
    --tuning_seeds=100 --output=/tmp/pilot.json                # a pilot
```
"""

import json
import os
import sys
import time

from absl import app
from absl import flags

from examples import common
from examples import datasets as fashion_data
from examples import fashion_mnist
from examples import results_page
from examples import stats

SCRIPT = "small_data"


def define_flags(flag_values=flags.FLAGS, **defaults):
    """Defines the flags of this script in `flag_values`."""
    defaults.setdefault("epochs", 60)
    defaults.setdefault("seeds", [str(seed) for seed in range(5)])
    defaults.setdefault("monitor_every", 10)
    fashion_mnist.define_flags(flag_values, **defaults)
    fv = flag_values
    flags.DEFINE_integer("train_size", 5000,
                         "Train on the first this many training images.",
                         flag_values=fv)
    flags.DEFINE_list("methods", ["plain", "gs", "ogd"],
                      "The methods compared (plain is the reference; "
                      "--method is not used).", flag_values=fv)
    flags.DEFINE_list("learning_rates", ["0.01", "0.02", "0.05", "0.1"],
                      "The learning-rate grid of the tuning stage.",
                      flag_values=fv)
    flags.DEFINE_list("weight_decays", ["0"],
                      "The weight-decay grid of the tuning stage (0: none).",
                      flag_values=fv)
    flags.DEFINE_list("tuning_seeds", ["100", "101"],
                      "Seeds of the tuning stage (apart from --seeds).",
                      flag_values=fv)
    flags.DEFINE_boolean(
        "cosine_decay", True,
        "Decay the learning rate to 0 over the run (cosine), so that every "
        "run ends converged; sets --cosine_decay_steps.", flag_values=fv)
    flags.DEFINE_string("output", None,
                        "Where the results JSON goes (e.g. "
                        "docs/small_data.json).", flag_values=fv)
    flags.DEFINE_boolean(
        "resume", True,
        "Reuse a run whose results.json in its --model_dir directory was "
        "written with the same flags (apart from where results go and how "
        "much is logged), so that an interrupted run goes on.",
        flag_values=fv)


# Flags that change where results go or what is logged, or that describe the
# whole experiment (its grid, methods and tuning seeds), not a run's numbers:
# a run of a grid point is reused when the grid grows.
UNCOMPARED_FLAGS = ("model_dir", "output", "verbose", "monitor_every",
                    "epoch_test_metrics", "resume", "learning_rates",
                    "weight_decays", "methods", "tuning_seeds")


def grid(flags_obj):
    """The tuning grid: a list of `{"learning_rate", "weight_decay"}`."""
    return [
        {"learning_rate": float(lr),
         "weight_decay": float(wd) if float(wd) > 0 else None}
        for lr in flags_obj.learning_rates
        for wd in flags_obj.weight_decays
    ]


def subset_splits(flags_obj, datasets=None):
    """The main job's splits with the first `--train_size` training images."""
    splits = fashion_mnist.load_splits(flags_obj, datasets)
    splits["train"] = splits["train"].take(flags_obj.train_size)
    return splits


def train_runs(flags_obj, splits, method, point, seeds, model_dir):
    """`common.run_seeds` of one method at one grid point."""
    steps = -(-flags_obj.train_size // flags_obj.batch_size)
    if flags_obj.max_steps_per_epoch > 0:
        steps = min(steps, flags_obj.max_steps_per_epoch)
    run_flags = common.with_overrides(
        flags_obj, method=method, seeds=[str(s) for s in seeds],
        model_dir=model_dir,
        cosine_decay_steps=(flags_obj.epochs * steps
                            if flags_obj.cosine_decay else 0),
        **point)

    def train_one(flags_obj, seed, run_dir):
        method = common.get_method(flags_obj)
        return fashion_mnist.train_classifier(
            flags_obj, seed, run_dir,
            lambda: fashion_mnist.build_model(
                method, common.opt_layer_kwargs(flags_obj)),
            splits, select_best=True)

    return (_stored_results(run_flags)
            or common.run_seeds(run_flags, SCRIPT, train_one))


def _stored_results(run_flags):
    """The results.json of the same run in its model_dir, or `None`."""
    if not run_flags.resume or not run_flags.model_dir:
        return None
    path = os.path.join(run_flags.model_dir, common.RESULTS_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        stored = json.load(f)
    current = common.jsonable(dict(vars(run_flags)))
    if any(stored["flags"].get(key) != value
           for key, value in current.items()
           if key not in UNCOMPARED_FLAGS):
        return None
    return stored


def _point_name(point):
    wd = point["weight_decay"]
    return f"lr{point['learning_rate']:g}_wd{0 if wd is None else wd:g}"


def _run_summary(results, point):
    runs = results["runs"]
    return {
        **point,
        "seeds": results["seeds"],
        **{key: common.mean_std([run.get(key) for run in runs])
           for key in ("val_accuracy", "test_accuracy", "train_accuracy",
                       "train_time_s")},
        # 1-based; the weights of this epoch were kept (`select_best`).
        "best_epoch": [
            1 + run["history"]["val_accuracy"].index(
                max(run["history"]["val_accuracy"]))
            for run in runs
        ],
    }


def _model_dir(flags_obj, *parts):
    if not flags_obj.model_dir:
        return None
    return os.path.join(flags_obj.model_dir, *parts)


def tune(flags_obj, splits, method):
    """Every grid point on the tuning seeds; returns `{"points", "chosen"}`."""
    points = []
    for point in grid(flags_obj):
        results = train_runs(
            flags_obj, splits, method, point,
            [int(s) for s in flags_obj.tuning_seeds],
            _model_dir(flags_obj, "tuning", method, _point_name(point)))
        points.append(_run_summary(results, point))
    best = max(points, key=lambda p: p["val_accuracy"]["mean"])
    chosen = {"learning_rate": best["learning_rate"],
              "weight_decay": best["weight_decay"]}
    return {"points": points, "chosen": chosen}


def compare(evaluation, reference=common.PLAIN):
    """Paired test-accuracy differences (points) of each method to plain."""
    plain = evaluation.get(reference)
    comparisons = {}
    for method, entry in evaluation.items():
        difference = results_page.difference_to_plain(entry, plain)
        if difference is not None and method != reference:
            comparisons[method] = {**difference,
                                   "verdict": stats.verdict(difference)}
    return comparisons


def command(flags_obj):
    """The command line of this protocol (flags that set it, no paths)."""
    names = ("methods", "seeds", "tuning_seeds", "learning_rates",
             "weight_decays", "train_size", "epochs", "batch_size",
             "validation_size", "cosine_decay")
    values = {name: getattr(flags_obj, name) for name in names}
    return "python -m examples.small_data " + " ".join(
        f"--{name}={','.join(value) if isinstance(value, list) else value}"
        for name, value in values.items())


def _check_flags(flags_obj):
    if isinstance(flags_obj, flags.FlagValues) and flags_obj["method"].present:
        raise ValueError(
            "Invalid flag `--method`. This script compares the methods of "
            "`--methods`. Received: --method=" + flags_obj.method)
    if not flags_obj.validation_size > 0:
        raise ValueError(
            "Invalid value for flag `--validation_size`. Expected > 0: the "
            "tuning and the model selection need a validation split. "
            f"Received: {flags_obj.validation_size}")


def run(flags_obj, datasets=None):
    """Tunes, evaluates and compares every method; returns the results.

    Args:
        flags_obj: this script's flag values.
        datasets: optional `{"train": ds, "test": ds}`, as for
            `examples.fashion_mnist.run`.

    Returns:
        A dict: `protocol` (the flags), `tuning` (per method: every grid
        point's numbers and the chosen point), `evaluation` (per method:
        the per-seed numbers at its point) and `comparison` (per OPT
        method: the paired difference to plain, its interval and verdict).
    """
    _check_flags(flags_obj)
    start = time.perf_counter()
    splits = subset_splits(flags_obj, datasets)
    results = {"command": command(flags_obj),
               "protocol": vars(common.with_overrides(flags_obj)),
               "tuning": {}, "evaluation": {}}
    for method in flags_obj.methods:
        results["tuning"][method] = tune(flags_obj, splits, method)
        chosen = results["tuning"][method]["chosen"]
        evaluation = train_runs(
            flags_obj, splits, method, chosen, common.seeds(flags_obj),
            _model_dir(flags_obj, "evaluation", method))
        results["evaluation"][method] = _run_summary(evaluation, chosen)
    results["comparison"] = compare(results["evaluation"])
    results["total_time_s"] = time.perf_counter() - start
    if flags_obj.output:
        write_output(results, flags_obj.output)
    return results


def write_output(results, path):
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(common.jsonable(results), f, indent=1)
        f.write("\n")
    return path


def format_report(results):
    """The lines a run prints: each method's point, accuracies, verdict."""
    lines = []
    for method, entry in results["evaluation"].items():
        lines.append(
            f"{method}: lr {entry['learning_rate']:g}, weight decay "
            f"{entry['weight_decay'] or 0:g}; test "
            f"{common.format_mean_std(entry['test_accuracy'])}, validation "
            f"{common.format_mean_std(entry['val_accuracy'])}, train "
            f"{common.format_mean_std(entry['train_accuracy'])}")
    for method, c in results["comparison"].items():
        interval = ("" if c["low"] is None
                    else f" [{c['low']:+.2f}, {c['high']:+.2f}]")
        lines.append(f"{method} − plain: {c['mean']:+.2f}{interval} points "
                     f"over {c['n']} seeds: {c['verdict']}")
    return "\n".join(lines)


def main(_):
    try:
        print(format_report(run(flags.FLAGS)))
    except fashion_data.DataUnavailableError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
