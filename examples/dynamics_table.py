"""Prints the training dynamics of runs as a markdown table, per epoch.

Reads the `results.json` of runs made with `--rotation_steps` (see
`examples/common.py`) and prints, at the chosen epochs, the training loss,
the validation accuracy and, for one OPT layer, how far its rotation moved
in the epoch (‖R_t − R_t−1‖_F), its distance from the identity
(‖R − I‖_F) and its mean gain. A table in `docs/recipes.md` is its output.

Usage:

```shell
python -m examples.gcn --method=cp --seeds=0 --rotation_steps \\
    --model_dir=/tmp/diag/gcn_cp
python -m examples.dynamics_table --layer=opt_dense \\
    /tmp/diag/gcn_gs/results.json /tmp/diag/gcn_cp/results.json
```
"""

import json

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


def main(argv):
    named = {}
    for path in argv[1:]:
        with open(path) as f:
            results = json.load(f)
        named[f"{results['method']} ({results.get('recipe', 'default')}), "
              f"seed {results['seeds'][0]}"] = results
    print("\n".join(table_lines(named, [int(e) for e in FLAGS.epochs],
                                FLAGS.layer)))


if __name__ == "__main__":
    define_flags()
    app.run(main)
