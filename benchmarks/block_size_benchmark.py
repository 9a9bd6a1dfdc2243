"""Accuracy against cost of block-diagonal rotations (`block_size`).

Usage (from the repository root):

    # 1. accuracy: the example scripts at every block size, 3 seeds each
    nice -n 10 .venv/bin/python benchmarks/block_size_benchmark.py \\
        --tasks=gcn,fashion_mnist --run
    # 2. cost: one training step of each model, interleaved
    .venv/bin/python benchmarks/block_size_benchmark.py --steps
    # 3. the table and the plot, from the JSON only
    .venv/bin/python benchmarks/block_size_benchmark.py --report

For each task (`examples.gcn`, Cora; `examples.fashion_mnist`, the main
job) and variant (the plain network, `--block_size` 8, 16, 32, 64, and full
OPT), `--run` runs the example script as a user would,
`python -m examples.<task> --method=<m> [--block_size=b] --seeds=0,1,2
--verbose=0 --model_dir=<dir>`, in a subprocess, and stores its summary in
the results JSON (default `docs/block_size_results.json`); variants already
there are skipped unless `--force`, so an interrupted grid resumes.
`--steps` times `train_on_batch` of the script's own model and optimizer
(its `build_model` and `common.build_optimizer`, the default flags plus
the variant's) on one batch of the script's shape (Fashion-MNIST: 128
images; Cora: the whole graph), median of `--step_repeats` calls after two
warm-ups, each variant in a fresh subprocess, the variants interleaved over
`--step_rounds` rounds (median over rounds); it also stores the paper's
parameter count. `--report` writes a markdown section into
`docs/benchmarks.md` (between the block_size_benchmark markers) and the
plot `docs/block_size_accuracy.png`.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import _timing  # noqa: E402

TASKS = {"gcn": "Cora, 2-layer GCN", "fashion_mnist": "Fashion-MNIST CNN"}
DEFAULT_JSON = os.path.join(ROOT, "docs", "block_size_results.json")
DEFAULT_DOC = os.path.join(ROOT, "docs", "benchmarks.md")
DEFAULT_PLOT = os.path.join(ROOT, "docs", "block_size_accuracy.png")
START = "<!-- block_size_benchmark:start -->"
END = "<!-- block_size_benchmark:end -->"


EPISODE_FLAGS = ("--every=", "--keep_permutation")


def variants(method, block_sizes, episodes=(), merges=()):
    """`{label: flags}`: the plain network, each block size, full OPT.

    `episodes` holds `(b, n)` pairs: block size b with Π redrawn every n
    steps (`benchmarks/block_episodes.py`); `merges` the same pairs for its
    `--keep_permutation` ablation (merge and reset, same Π).
    """
    out = {"plain": ["--method=plain"]}
    for size in block_sizes:
        out[f"b={size}"] = [f"--method={method}", f"--block_size={size}"]
    for pairs, name, keep in ((episodes, "Π", []),
                              (merges, "merge", ["--keep_permutation"])):
        for size, every in pairs:
            out[f"b={size}+{name}/{every}"] = [f"--every={every}"] + keep + [
                f"--method={method}", f"--block_size={size}"
            ]
    out["full"] = [f"--method={method}"]
    return out


def _split_episode_flags(flags):
    episode = [f for f in flags if f.startswith(EPISODE_FLAGS)]
    return episode, [f for f in flags if not f.startswith(EPISODE_FLAGS)]


def accuracy_command(task, flags, seeds):
    tail = f"--seeds={seeds} --verbose=0"
    episode, flags = _split_episode_flags(flags)
    if episode:
        return (
            f"python benchmarks/block_episodes.py --task={task} "
            f"{' '.join(episode)} -- {' '.join(flags)} {tail}"
        )
    return f"python -m examples.{task} {' '.join(flags)} {tail}"


def run_accuracy(task, label, flags, seeds, extra, model_dir):
    command = accuracy_command(task, flags + extra, seeds)
    name = "".join(c if c.isalnum() else "_" for c in label)
    run_dir = os.path.join(model_dir, f"{task}_{name}")
    argv = command.split()[1:] + [f"--model_dir={run_dir}"]
    started = time.perf_counter()
    subprocess.run(
        [sys.executable] + argv, cwd=ROOT, check=True,
        stdout=subprocess.DEVNULL,
    )
    with open(os.path.join(run_dir, "results.json")) as f:
        results = json.load(f)
    return {
        "command": command,
        "wall_s": time.perf_counter() - started,
        "test_accuracy": results["summary"]["test_accuracy"],
        "val_accuracy": results["summary"]["val_accuracy"],
        "train_time_s": [run["train_time_s"] for run in results["runs"]],
        "epochs_run": [run["epochs_run"] for run in results["runs"]],
        "orthogonality_errors": [
            run["orthogonality_errors"] for run in results["runs"]
        ],
    }


def _task_flags(task, argv):
    from absl import flags

    module = __import__(f"examples.{task}", fromlist=["define_flags"])
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    flag_values(["prog"] + argv)
    return module, flag_values


def _training_step(task, argv):
    """`(step, model)`: one training step of the script's model, as called."""
    import keras
    import numpy as np

    from examples import common

    module, flags_obj = _task_flags(task, argv)
    method = common.get_method(flags_obj)
    opt_kwargs = common.opt_layer_kwargs(flags_obj)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if task == "gcn":
        graph, labels, weights, classes = module.load_graph(flags_obj)
        model = module.build_model(
            method, graph["features"], graph["adjacency"], classes,
            hidden_units=flags_obj.hidden_units, dropout=flags_obj.dropout,
            l2=flags_obj.l2, opt_kwargs=opt_kwargs,
        )
        nodes = np.arange(len(labels), dtype="int32")
        batch = (nodes, labels, weights["train"])
    else:
        model = module.build_model(method, opt_kwargs)
        rng = np.random.default_rng(0)
        batch = (
            rng.uniform(size=(flags_obj.batch_size, 28, 28, 1)).astype("f4"),
            rng.integers(0, 10, flags_obj.batch_size),
            None,
        )
    model.compile(optimizer=common.build_optimizer(flags_obj), loss=loss)
    x, y, sample_weight = batch
    def step():
        return model.train_on_batch(x, y, sample_weight=sample_weight)

    return step, model


def step_child(task, argv, repeats):
    import keras_opt

    step, model = _training_step(task, argv)
    print(json.dumps({
        "step_s": _timing.median_seconds(step, repeats, warmups=2),
        "paper_params": keras_opt.models.paper_parameter_count(model),
    }))


def measure_steps(tasks, rounds, repeats):
    """Step times of `tasks` (`{task: {label: flags}}`), interleaved."""
    found = {
        task: {label: [] for label in labels} for task, labels in tasks.items()
    }
    params = {task: {} for task in tasks}
    for _ in range(rounds):
        for task, labels in tasks.items():
            for label, flags in labels.items():
                output = subprocess.run(
                    [sys.executable, os.path.abspath(__file__), "--child",
                     task, "--repeats", str(repeats), "--"]
                    # An episode costs O(d·b·n) once per n steps: not timed.
                    + _split_episode_flags(flags)[1],
                    cwd=ROOT, check=True, capture_output=True, text=True,
                ).stdout
                row = json.loads(output.strip().splitlines()[-1])
                found[task][label].append(row["step_s"])
                params[task][label] = row["paper_params"]
    return {
        task: {
            label: {
                "step_s": statistics.median(times),
                "step_s_rounds": times,
                "paper_params": params[task][label],
            }
            for label, times in by_label.items()
        }
        for task, by_label in found.items()
    }


def load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"tasks": {}}


def save(results, path):
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


def _commit():
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
        capture_output=True, text=True,
    ).stdout.strip() or "?"


def machine():
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )


def _percent(stats):
    if not stats:
        return "–"
    return f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"


def _order(label):
    """Table order: plain, then by block size (episodes after), full."""
    if label == "plain":
        return (0, 0, label)
    if label == "full":
        return (2, 0, label)
    size = int(label.split("=")[1].split("+")[0])
    return (1, size, label)


def _count(value):
    return "–" if value is None else f"{value:,}"


def table(task, rows):
    full = rows.get("full", {})
    lines = [
        "| variant | seeds | validation | test | test − full | step (ms) | "
        "step / full | paper params |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, row in rows.items():
        test = row.get("test_accuracy")
        gap = "–"
        if test and full.get("test_accuracy") and label != "full":
            gap = f"{100 * (test['mean'] - full['test_accuracy']['mean']):+.2f}"
        step = row.get("step_s")
        ratio = "–"
        if step and full.get("step_s"):
            ratio = f"{step / full['step_s']:.2f}"
        lines.append(
            f"| {label} | {len(test['values']) if test else 0} | "
            f"{_percent(row.get('val_accuracy'))} | {_percent(test)} | {gap} "
            f"| {'–' if step is None else f'{1000 * step:.1f}'} | {ratio} | "
            f"{_count(row.get('paper_params'))} |"
        )
    return "\n".join(lines)


def report(results, doc_path, plot_path):
    sections = [
        START,
        "",
        "Generated by `.venv/bin/python benchmarks/block_size_benchmark.py "
        "--report` from `docs/block_size_results.json`; accuracy in %, mean "
        "± std over seeds; step = median `train_on_batch` of the script's "
        f"model. Accuracy runs: {results.get('accuracy_machine', '?')}. "
        f"Step times: {results.get('steps_machine', '?')}.",
        "",
    ]
    for task, rows in results["tasks"].items():
        rows = dict(sorted(rows.items(), key=lambda item: _order(item[0])))
        sections += [f"**{TASKS[task]}** (`examples/{task}.py`)", ""]
        sections += [table(task, rows), "", "Commands:", ""]
        sections += [
            f"- {label}: `{row['command']}`"
            for label, row in rows.items()
            if "command" in row
        ]
        sections.append("")
    image = os.path.basename(plot_path)
    sections += [f"![accuracy against step time]({image})", "", END]
    text = open(doc_path).read() if os.path.exists(doc_path) else ""
    block = "\n".join(sections)
    if START in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        title = "## Block-diagonal rotations (issue 18)"
        text = text.rstrip("\n") + f"\n\n{title}\n\n{block}\n"
    with open(doc_path, "w") as f:
        f.write(text)
    plot(results, plot_path)


def plot(results, path):
    """Test accuracy against the block size, one panel per task.

    Fixed blocks as a line, episode variants as markers beside them, full
    OPT and the plain network as horizontal bands; the tick labels give
    each block size's step time as a fraction of full OPT's.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"])
    figure, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4))
    axes = [axes] if len(tasks) == 1 else axes
    for axis, task in zip(axes, tasks):
        _plot_task(axis, task, results["tasks"][task])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _series_name(kind):
    if kind.startswith("Π/"):
        return f"Π redrawn every {kind[2:]} steps"
    if kind.startswith("merge/"):
        return f"merge and reset every {kind[6:]} steps, same Π"
    return kind


def _plot_task(axis, task, rows):
    sizes = sorted({_order(label)[1] for label in rows if "=" in label})
    full_step = rows.get("full", {}).get("step_s")
    for label, color in (("full", "tab:blue"), ("plain", "tab:gray")):
        test = rows.get(label, {}).get("test_accuracy")
        if test:
            mean, std = 100 * test["mean"], 100 * test["std"]
            axis.axhline(mean, color=color, linestyle="--", label=label)
            axis.axhspan(mean - std, mean + std, color=color, alpha=0.1)
    series = {}
    for label, row in rows.items():
        if "=" not in label or not row.get("test_accuracy"):
            continue
        kind = label.split("+", 1)[1] if "+" in label else "fixed blocks"
        x = sizes.index(_order(label)[1])
        test = row["test_accuracy"]
        series.setdefault(kind, []).append(
            (x, 100 * test["mean"], 100 * test["std"])
        )
    for index, (kind, points) in enumerate(sorted(series.items())):
        points.sort()
        offset = 0.0 if kind == "fixed blocks" else 0.08 * (index + 1)
        xs = [x + offset for x, _, _ in points]
        axis.errorbar(
            xs, [p[1] for p in points], yerr=[p[2] for p in points],
            fmt="o-" if kind == "fixed blocks" else "s", capsize=3,
            label=_series_name(kind),
        )
    labels = []
    for size in sizes:
        step = rows.get(f"b={size}", {}).get("step_s")
        ratio = f"\n{step / full_step:.2f}× full" if step and full_step else ""
        labels.append(f"b={size}{ratio}")
    axis.set_xticks(range(len(sizes)), labels)
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"{TASKS[task]} (step time / full OPT below)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="gcn,fashion_mnist")
    parser.add_argument("--method", default="gs")
    parser.add_argument("--block_sizes", default="8,16,32,64")
    parser.add_argument(
        "--episodes", default="",
        help="Comma-separated b:n, block size b with Π redrawn every n "
        "steps (benchmarks/block_episodes.py), e.g. 8:25.",
    )
    parser.add_argument(
        "--merges", default="",
        help="As --episodes, for the ablation that keeps Π.",
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=None,
                        help="Comma-separated labels to run (default: all).")
    parser.add_argument("--extra", default="",
                        help="Extra flags of the example scripts.")
    parser.add_argument("--json", default=DEFAULT_JSON)
    parser.add_argument("--model_dir", default=None)
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--steps", action="store_true")
    parser.add_argument("--step_rounds", type=int, default=3)
    parser.add_argument("--step_repeats", type=int, default=10)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--doc", default=DEFAULT_DOC)
    parser.add_argument("--plot", default=DEFAULT_PLOT)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=10,
                        help=argparse.SUPPRESS)
    parser.add_argument("child_flags", nargs="*", help=argparse.SUPPRESS)
    return parser.parse_args()


def run_grid(args, tasks, all_variants, results):
    model_dir = args.model_dir or tempfile.mkdtemp(prefix="block_size_")
    extra = args.extra.split()
    results["accuracy_machine"] = (
        f"{datetime.date.today()}, {machine()} (at the start), code "
        f"{_commit()}"
    )
    for task in tasks:
        rows = results["tasks"].setdefault(task, {})
        for label, flags in all_variants.items():
            done = "test_accuracy" in rows.get(label, {})
            if done and not args.force:
                continue
            command = accuracy_command(task, flags + extra, args.seeds)
            print(f"{task} {label}: {command}", flush=True)
            rows.setdefault(label, {}).update(
                run_accuracy(task, label, flags, args.seeds, extra, model_dir)
            )
            print(f"  test {_percent(rows[label]['test_accuracy'])}",
                  flush=True)
            save(results, args.json)


def _pairs(text):
    return [tuple(int(v) for v in pair.split(":")) for pair in text.split(",")
            if pair]


def main():
    args = parse_args()
    if args.child:
        step_child(args.child, args.child_flags, args.repeats)
        return
    tasks = args.tasks.split(",")
    all_variants = variants(
        args.method,
        [int(b) for b in args.block_sizes.split(",")],
        _pairs(args.episodes),
        _pairs(args.merges),
    )
    if args.variants:
        chosen = args.variants.split(",")
        all_variants = {k: v for k, v in all_variants.items() if k in chosen}
    results = load(args.json)
    if args.run:
        run_grid(args, tasks, all_variants, results)
    if args.steps:
        results["steps_machine"] = (
            f"{datetime.date.today()}, {machine()} (at the start), code "
            f"{_commit()}"
        )
        # The variants with accuracy runs of each task (all of them if none).
        chosen = {
            task: {
                label: flags
                for label, flags in all_variants.items()
                if label in results["tasks"].get(task, {label: 0})
            }
            for task in tasks
        }
        measured = measure_steps(chosen, args.step_rounds, args.step_repeats)
        for task, by_label in measured.items():
            rows = results["tasks"].setdefault(task, {})
            for label, row in by_label.items():
                rows.setdefault(label, {}).update(row)
        save(results, args.json)
    if args.report:
        report(results, args.doc, args.plot)


if __name__ == "__main__":
    main()
