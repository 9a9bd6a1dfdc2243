"""Prints the training dynamics of runs as markdown tables.

Reads the `results.json` of runs made with `--rotation_steps` (see
`examples/common.py`) and prints, at the chosen epochs, the training loss,
the validation accuracy and, for one OPT layer, how far its rotation moved
in the epoch (‖R_t − R_t−1‖_F), its distance from the identity
(‖R − I‖_F) and its mean gain. A second table gives, over all the seeds
of each run, the accuracies at the selected epoch and over the last
`--last_epochs` epochs, and how much the validation accuracy moves from one
epoch to the next there (any run's `results.json`; `--rotation_steps` is
not needed). Tables in `docs/recipes.md` are its output.

Usage:

```shell
python -m examples.gcn --method=cp --seeds=0 --rotation_steps \\
    --model_dir=/tmp/diag/gcn_cp
python -m examples.dynamics_table --layer=opt_dense \\
    /tmp/diag/gcn_gs/results.json /tmp/diag/gcn_cp/results.json
```
"""

import json

import numpy as np
from absl import app
from absl import flags

FLAGS = flags.FLAGS

ROWS = (
    ("loss", "train loss", 3),
    ("val_accuracy", "validation accuracy", 3),
    ("rotation_step/{layer}", "‖R_t − R_t−1‖_F", 2),
    ("rotation_distance/{layer}", "‖R − I‖_F", 1),
    ("gain/{layer}", "mean gain", 2),
)


def define_flags(flag_values=FLAGS):
    flags.DEFINE_list("epochs", ["1", "2", "5", "10", "20", "50", "100",
                                 "150", "200"],
                      "The epochs (1-based) to print.",
                      flag_values=flag_values)
    flags.DEFINE_string("layer", "opt_dense",
                        "The OPT layer whose rotation is printed.",
                        flag_values=flag_values)
    flags.DEFINE_integer("last_epochs", 50,
                         "The late-training window of the second table; 0 "
                         "leaves the table out.",
                         flag_values=flag_values)


def table_lines(named_results, epochs, layer):
    """Markdown lines: one row per (run, quantity), one column per epoch.

    Args:
        named_results: `{name: results.json dict}` (the first seed's run).
        epochs: 1-based epochs; those past a run's end are left blank.
        layer: the OPT layer's name.
    """
    lines = ["| run | quantity | " + " | ".join(
        f"epoch {e}" for e in epochs) + " |",
        "|---|---|" + "---|" * len(epochs)]
    for name, results in named_results.items():
        history = results["runs"][0]["history"]
        for key, title, digits in ROWS:
            values = history.get(key.format(layer=layer))
            if values is None:
                continue
            cells = [f"{values[e - 1]:.{digits}f}" if e <= len(values) else ""
                     for e in epochs]
            lines.append(f"| {name} | {title} | " + " | ".join(cells) + " |")
    return lines


def _late_training(history, last):
    validation = np.asarray(history["val_accuracy"]) * 100
    test = np.asarray(history.get("test_accuracy", np.full_like(
        validation, np.nan))) * 100
    # The first epoch of best validation accuracy, as EarlyStopping restores.
    selected = int(np.argmax(validation))
    window = slice(len(validation) - last, None)
    return (selected + 1, validation[selected], test[selected],
            validation[window].mean(), test[window].mean(),
            np.diff(validation[window]).std())


def late_training_lines(named_results, last):
    """Markdown lines: one row per run, over all of its seeds.

    Each column is the mean over the seeds of: the selected epoch (the first
    of best validation accuracy) and the validation and test accuracy there;
    their means over the last `last` epochs; the standard deviation of the
    epoch-to-epoch change of the validation accuracy over those epochs.
    Accuracies in %, changes in points; `nan` where a run logged no test
    accuracy per epoch.
    """
    lines = [f"| run | seeds | selected epoch | validation / test there | "
             f"last {last} epochs: validation / test | validation change "
             f"per epoch, last {last} (std, points) |",
             "|---|---|---|---|---|---|"]
    for name, results in named_results.items():
        rows = np.array([_late_training(run["history"], last)
                         for run in results["runs"]])
        epoch, val, test, late_val, late_test, change = rows.mean(axis=0)
        lines.append(
            f"| {name} | {len(rows)} | {epoch:.1f} | {val:.2f} / {test:.2f} "
            f"| {late_val:.2f} / {late_test:.2f} | {change:.2f} |")
    return lines


def _join(seeds):
    return ",".join(str(seed) for seed in seeds)


def main(argv):
    named, late = {}, {}
    for path in argv[1:]:
        with open(path) as f:
            results = json.load(f)
        name = f"{results['method']} ({results.get('recipe', 'default')})"
        for table, key in ((named, f"{name}, seed {results['seeds'][0]}"),
                           (late, f"{name}, seeds {_join(results['seeds'])}")):
            table[key if key not in table else f"{key} ({path})"] = results
    print("\n".join(table_lines(named, [int(e) for e in FLAGS.epochs],
                                FLAGS.layer)))
    if FLAGS.last_epochs > 0:
        print("\n" + "\n".join(late_training_lines(late, FLAGS.last_epochs)))


if __name__ == "__main__":
    define_flags()
    app.run(main)
