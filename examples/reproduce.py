"""Runs a grid of (script, method, flags, seeds) and writes docs/results.md.

Each grid entry runs one example script in this process (its `define_flags`
on a fresh `FlagValues`, then `run`), with `--model_dir` under
`--work_dir/<script>/<label>`; its `results.json` is kept there. An entry
whose seeds and command match stored results is not rerun: its
`results.json` in `--work_dir`, else its record in `--summary`
(`docs/results_summary.json`, the per-seed validation and test accuracies
of every entry, which this script rewrites). So with the stored file,

```shell
python -m examples.reproduce --grid=full
```

trains nothing and regenerates, from the stored per-seed results:

- `docs/results.md`: one table per script (validation and test accuracy,
  mean ± std over the seeds, the paired difference to the plain network
  with its 95 % Student-t interval and verdict, the paper's number, the
  command; `examples/results_page.py`), plus the section of
  `docs/small_data.json` (`examples/small_data.py`) when it exists;
- the README's generated blocks (the headline table and the main job's
  accuracy), when `--output_dir` is `docs` (or `--readme` names a file);
- PNG plots of the entries that have their `results.json` in
  `--work_dir` (test accuracy over epochs, mean over seeds, per method;
  each method's energy and orthogonality, `keras_opt.plot`); the stored
  figures are kept otherwise.

Rerun entries with `--noresume --scripts=... --labels=...`.

Usage:

```shell
python -m examples.reproduce --grid=tiny --output_dir=/tmp/docs   # smoke
python -m examples.reproduce --grid=full                           # docs/
```

The `full` grid is where the lead engineer puts the final configurations.
"""

import datetime
import json
import os
import platform
import shutil

import numpy as np
from absl import app
from absl import flags

import keras_opt
from examples import common
from examples import gcn
from examples import results_page

SUMMARY_FILE = "results_summary.json"
# What `python -m examples.small_data --output=docs/small_data.json` writes.
SMALL_DATA_FILE = "small_data.json"
# (script, label, method, extra argv[, seeds]); seeds default to the grid's.
ABLATION_SEEDS = [0, 1, 2]
THREE_SEEDS = [0, 1, 2]
FIVE_SEEDS = [0, 1, 2, 3, 4]
OFFICIAL = ["--recipe=official"]
# Fresh seeds for the Cora defaults chosen on seeds 0–9's validation accuracy.
CONFIRM_SEEDS = list(range(10, 20))
# The MLP grid: every exact map and OGD, at the script's defaults; over five
# seeds except Newton–Schulz, whose epochs at d = 784 take 5–10 minutes on
# the 2-core machine (three seeds, trained only when named: the grid's
# "run_when_named").
MLP_METHODS = ("plain", "gs", "hr", "ls", "cp", "newton_schulz", "ogd")
MLP_FIVE_SEEDS = ("plain", "gs", "cp", "hr", "ls", "ogd")
GRIDS = {
    "tiny": {
        "seeds": [0, 1],
        "runs": [
            ("gcn", "plain", "plain", ["--epochs=3"]),
            ("gcn", "gs", "gs", ["--epochs=3"]),
            ("mlp", "plain", "plain",
             ["--epochs=2", "--max_steps_per_epoch=3",
              "--validation_size=256"]),
            ("mlp", "gs", "gs",
             ["--epochs=2", "--max_steps_per_epoch=3",
              "--validation_size=256"]),
        ],
    },
    # Every method at its defaults: the library's recipe for OPT, the
    # script's published recipe for the plain network; no per-method tuning.
    "full": {
        "seeds": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        "runs": [
            ("gcn", "plain", "plain", []),
            ("gcn", "gs", "gs", []),
            ("gcn", "cp", "cp", []),
            ("gcn", "ogd", "ogd", []),
            ("gcn", "upt", "upt", [], ABLATION_SEEDS),
            ("gcn", "cp_official", "cp", OFFICIAL, THREE_SEEDS),
            # The weight decay each method's default goes without, or takes.
            ("gcn", "plain_no_l2", "plain", ["--l2=0"]),
            *[("gcn", f"{method}_with_l2", method, [f"--l2={gcn.KIPF_L2}"])
              for method in gcn.NO_DECAY_METHODS],
            # The defaults again, on seeds that chose nothing.
            *[("gcn", f"{method}_seeds_10_19", method, [], CONFIRM_SEEDS)
              for method in ("plain", *gcn.NO_DECAY_METHODS)],
            ("fashion_mnist", "plain", "plain", [], THREE_SEEDS),
            ("fashion_mnist", "gs", "gs", [], THREE_SEEDS),
            ("fashion_mnist", "cp", "cp", [], THREE_SEEDS),
            ("fashion_mnist", "ogd", "ogd", [], THREE_SEEDS),
            ("fashion_mnist", "ls", "ls", [], THREE_SEEDS),
            ("fashion_mnist", "upt", "upt", [], ABLATION_SEEDS),
            ("fashion_mnist", "gs_fn", "gs", ["--trainable_basis"],
             ABLATION_SEEDS),
            *[("mlp", method, method, [],
               FIVE_SEEDS if method in MLP_FIVE_SEEDS else THREE_SEEDS)
              for method in MLP_METHODS],
            ("cls_opt", "gs", "gs", [], THREE_SEEDS),
        ],
        # Hours of training on the 2-core machine: a grid run trains these
        # only when --labels names them, so that regenerating the page
        # from the stored results never starts them.
        "run_when_named": {("mlp", "newton_schulz")},
    },
}

FLAGS = flags.FLAGS


def define_flags(flag_values=FLAGS):
    fv = flag_values
    flags.DEFINE_enum("grid", "tiny", sorted(GRIDS), "Which grid to run.",
                      flag_values=fv)
    flags.DEFINE_list("seeds", None, "Override the grid's seeds.",
                      flag_values=fv)
    flags.DEFINE_string("output_dir", "docs",
                        "Where results.md, results_summary.json and the PNGs "
                        "go.", flag_values=fv)
    flags.DEFINE_string("work_dir", "/tmp/keras_opt_reproduce",
                        "Where each run's model_dir goes.", flag_values=fv)
    flags.DEFINE_string("data_dir", None,
                        "Passed to the Fashion-MNIST scripts.", flag_values=fv)
    flags.DEFINE_list(
        "scripts", None,
        "Run only the grid entries of these scripts (the page still lists "
        "every entry with stored results), e.g. to run two processes side "
        "by side.", flag_values=fv)
    flags.DEFINE_list(
        "labels", None,
        "Run only the grid entries with these labels (with --scripts).",
        flag_values=fv)
    flags.DEFINE_boolean(
        "resume", True,
        "Reuse an entry's stored results (its results.json in --work_dir, "
        "else its record in --summary) when they have the same seeds and "
        "command; --noresume reruns the entries that --scripts/--labels "
        "select.", flag_values=fv)
    flags.DEFINE_string(
        "summary", os.path.join("docs", SUMMARY_FILE),
        "The stored per-seed results to reuse (a results_summary.json).",
        flag_values=fv)
    flags.DEFINE_string(
        "readme", None,
        "The README whose generated blocks are rewritten from the results; "
        "defaults to README.md when --output_dir is docs, '' for none.",
        flag_values=fv)


def _script(name):
    import importlib

    return importlib.import_module(f"examples.{name}")


def _argv(method, argv, seeds):
    return [f"--method={method}",
            f"--seeds={','.join(str(s) for s in seeds)}", "--verbose=0",
            *argv]


def _command(script, method, argv, seeds):
    return f"python -m examples.{script} " + " ".join(
        _argv(method, argv, seeds))


def run_entry(script, method, argv, seeds, model_dir, data_dir=None):
    """Runs one grid entry; returns (results, the equivalent command).

    The command leaves out `--data_dir`, which does not change results.
    """
    module = _script(script)
    extra = [f"--model_dir={model_dir}"]
    if data_dir and script in ("fashion_mnist", "mlp", "cls_opt"):
        extra.append(f"--data_dir={data_dir}")
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    flag_values([script, *_argv(method, argv, seeds), *extra])
    return module.run(flag_values), _command(script, method, argv, seeds)


def summary_entry(results, command):
    """What results_summary.json keeps of one entry's results.json.

    A run that trained the plain network beside it (`examples.cls_opt`'s
    plain head, `--compare`) keeps its entry under `"compare"`; CLS-OPT
    keeps its prototypes' energy.
    """
    runs = results["runs"]
    times = [run.get("train_time_s") for run in runs]
    entry = {"command": command, "seeds": list(results["seeds"])}
    entry.update({key: results["summary"][key]
                  for key in ("val_accuracy", "test_accuracy")})
    if all(t is not None for t in times):
        entry["train_time_s"] = common.mean_std(times)
    if "prototype_energy" in results:
        entry["prototype_energy"] = results["prototype_energy"]
    if "compare" in results:
        entry["compare"] = summary_entry(results["compare"], command)
    return entry


def _copy_figure(results, output_dir):
    """Copies an entry's own figure (CLS-OPT's features) to `output_dir`."""
    path = results.get("png")
    if path and os.path.exists(path):
        shutil.copyfile(path, os.path.join(
            output_dir, f"{results['script']}_features.png"))


def _add_entry(tables, script, label, entry):
    """Adds `entry` to `tables`; its `"compare"` becomes the plain row."""
    table = tables.setdefault(script, {})
    compared = entry.get("compare")
    if compared is not None and results_page.PLAIN not in table:
        table[results_page.PLAIN] = compared
    table[label] = entry


def _mean_curve(results, key):
    curves = [run["history"].get(key) for run in results["runs"]]
    curves = [c for c in curves if c]
    if not curves:
        return None
    length = min(len(c) for c in curves)
    return np.mean([c[:length] for c in curves], axis=0)


def plot_accuracy(histories, path, title):
    """Test accuracy over epochs (mean over seeds), one line per method.

    Args:
        histories: `{label: results}` of results.json dicts.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, results in histories.items():
        curve = _mean_curve(results, "test_accuracy")
        if curve is not None:
            axes.plot(np.arange(1, len(curve) + 1), curve, label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("test accuracy (mean over seeds)")
    axes.set_title(title)
    axes.legend()
    figure.savefig(path, dpi=100)
    return path


def _plots(output_dir, script, histories, labels):
    """Writes the script's plots from the entries with histories.

    The accuracy plot is redrawn only when every entry has its history
    (else the stored figure is kept). Returns the file names of the
    script's figures in `output_dir`.
    """
    for label, results in histories.items():
        keras_opt.plot.plot_training_dynamics(
            results["runs"][0]["history"],
            os.path.join(output_dir, f"{script}_{label}_dynamics.png"),
            title=f"{script} {label}, seed {results['seeds'][0]}",
        )
    if set(histories) == set(labels):
        plot_accuracy(histories, os.path.join(
            output_dir, f"{script}_accuracy.png"), script)
    return stored_figures(output_dir, script, labels)


def stored_figures(output_dir, script, labels):
    """The file names of the script's figures that are in `output_dir`."""
    names = [f"{script}_accuracy.png", f"{script}_features.png",
             *(f"{script}_{label}_dynamics.png" for label in labels)]
    return [name for name in names
            if os.path.exists(os.path.join(output_dir, name))]


def write_page(summary, output_dir, grid, figures=None, small_data=None):
    """Writes results.md from a summary (see `examples.results_page`).

    `figures` maps a script to the file names of its PNGs in `output_dir`;
    `small_data` is the results of `examples/small_data.py`, or `None`.
    """
    lines = [
        "# Results",
        "",
        "Generated by `python -m examples.reproduce "
        f"--grid={grid} --output_dir={output_dir}` on "
        f"{datetime.date.today().isoformat()}, {platform.machine()} "
        f"{platform.processor() or ''} ({os.cpu_count()} CPUs), "
        f"keras_opt {keras_opt.__version__}, from the per-seed results in "
        f"`{SUMMARY_FILE}` (each row's command produced them). Every "
        "method runs at its defaults: the library's recipe for the OPT "
        "layers (`keras_opt.layers.BaseOPT`, \"Recipes\"), the script's "
        "published recipe for the plain network; no method was tuned on "
        "these runs except on Cora, where each method's weight decay "
        "(Kipf & Welling's or none) was chosen on the validation accuracy "
        "of seeds 0–9, the plain network offered the same choice "
        "(`docs/recipes.md`, item 9); the recipe was chosen on validation "
        "data (see the closing note of issue 8 and `docs/recipes.md`). "
        "`upt` is the "
        "paper's UPT ablation (W = P·V, P unconstrained: a gradient step "
        "on P moves W by the plain step times VᵀV, whose largest "
        "eigenvalue can be several times 1, so UPT can diverge at a "
        "learning rate the plain network takes) and `gs_fn` its FN ✗ "
        "ablation (V trained too).",
        "",
        results_page.METHOD_NOTE,
        "",
    ]
    for script, entries in summary.items():
        lines += results_page.script_section(
            script, entries, (figures or {}).get(script, ()))
    if small_data is not None:
        lines += results_page.small_data_lines(small_data)
    path = os.path.join(output_dir, "results.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def load_summary(path):
    """The stored summary at `path`, or `{}` when there is none."""
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _cached(model_dir, seeds, command):
    path = os.path.join(model_dir, common.RESULTS_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        results = json.load(f)
    if results.get("seeds") != seeds or results.get("command") != command:
        return None
    return results


def _stored(stored, script, label, seeds, command):
    entry = stored.get(script, {}).get(label)
    if entry and entry.get("seeds") == seeds and (
            entry.get("command") == command):
        return entry
    return None


class _Grid:
    """The entries of one grid, resolved to stored or new results."""

    def __init__(self, spec, seeds, options):
        self.spec, self.seeds, self.options = spec, seeds, options

    def entries(self):
        for entry in self.spec["runs"]:
            script, label, method, argv = entry[:4]
            seeds = [int(s) for s in self.seeds] if self.seeds else (
                entry[4] if len(entry) > 4 else self.spec["seeds"])
            yield script, label, method, argv, seeds

    def selected(self, script, label):
        scripts, labels = self.options["scripts"], self.options["labels"]
        if (script, label) in self.spec.get("run_when_named", ()):
            return bool(labels) and label in labels and (
                not scripts or script in scripts)
        return (not scripts or script in scripts) and (
            not labels or label in labels)

    def resolve(self, script, label, method, argv, seeds):
        """`(summary entry, results.json or None)`, or `(None, None)`."""
        options = self.options
        model_dir = os.path.join(options["work_dir"], script, label)
        command = _command(script, method, argv, seeds)
        rerun = not options["resume"] and self.selected(script, label)
        if not rerun:
            results = _cached(model_dir, seeds, command)
            if results is not None:
                return summary_entry(results, command), results
            entry = _stored(options["stored"], script, label, seeds, command)
            if entry is not None:
                return entry, None
        if not self.selected(script, label):
            return None, None
        results, command = run_entry(script, method, argv, seeds, model_dir,
                                     options["data_dir"])
        results["command"] = command
        common.write_results(results, model_dir)
        return summary_entry(results, command), results


def reproduce(grid, output_dir, work_dir, seeds=None, data_dir=None,
              scripts=None, resume=True, labels=None, summary=None,
              readme=None):
    """Runs `grid` (a name of `GRIDS` or a dict like them); writes the page.

    Entries whose seeds and command match stored results (a results.json
    in `work_dir`, else the record in the `summary` file) are not rerun.
    Writes results.md, results_summary.json and the plots to `output_dir`,
    and rewrites the generated blocks of `readme` (a path) if given.

    Returns:
        The path of results.md.
    """
    spec = GRIDS[grid] if isinstance(grid, str) else grid
    os.makedirs(output_dir, exist_ok=True)
    grid_runs = _Grid(spec, seeds, {
        "work_dir": work_dir, "data_dir": data_dir, "scripts": scripts,
        "labels": labels, "resume": resume, "stored": load_summary(summary)})
    tables, histories = {}, {}
    for script, label, method, argv, entry_seeds in grid_runs.entries():
        entry, results = grid_runs.resolve(script, label, method, argv,
                                           entry_seeds)
        if entry is None:
            continue
        _add_entry(tables, script, label, entry)
        if results is not None:
            _add_entry(histories, script, label, results)
            _copy_figure(results, output_dir)
    figures = {script: _plots(output_dir, script, histories.get(script, {}),
                              entries)
               for script, entries in tables.items()}
    with open(os.path.join(output_dir, SUMMARY_FILE), "w") as f:
        json.dump(tables, f, indent=1)
    if readme:
        results_page.update_readme(readme, tables)
    return write_page(tables, output_dir,
                      grid if isinstance(grid, str) else "custom", figures,
                      load_summary(os.path.join(output_dir, SMALL_DATA_FILE))
                      or None)


def _readme_path(flags_obj):
    if flags_obj.readme is not None:
        return flags_obj.readme or None
    if os.path.normpath(flags_obj.output_dir) == "docs":
        return "README.md"
    return None


def main(_):
    print(reproduce(FLAGS.grid, FLAGS.output_dir, FLAGS.work_dir,
                    FLAGS.seeds, FLAGS.data_dir, FLAGS.scripts, FLAGS.resume,
                    FLAGS.labels, FLAGS.summary, _readme_path(FLAGS)))


if __name__ == "__main__":
    define_flags()
    app.run(main)
