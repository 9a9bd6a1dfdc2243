"""docs/results.md and the README's headline, generated from stored results.

`examples.reproduce` keeps every grid entry's per-seed numbers in
`docs/results_summary.json`:

```
{script: {label: {"command": str, "seeds": [int, ...],
                  "val_accuracy": {"mean", "std", "values"},
                  "test_accuracy": {"mean", "std", "values"},
                  "train_time_s": {...} (when recorded)}}}
```

(`values[i]` belongs to `seeds[i]`; `std` is over the seeds with ddof = 0,
as in every results.json). This module turns that file into the page and
into the README blocks between `README_BEGIN` and `README_END`, so that no
number in either is typed by hand. Each OPT row is compared with the plain
network on the seeds both ran: the mean paired difference and its 95 %
Student-t interval (`examples.stats`); a method is called better or worse
only when the interval excludes 0.
"""

import re

from examples import stats

PLAIN = "plain"
DEFAULT_METHOD = "gs"
ABLATIONS = ("upt", "gs_fn")
# Entries with the official recipe (`--recipe=official`) are labelled so.
OFFICIAL_SUFFIX = "_official"
# Entries run without the weight decay of their default (`--l2=0`), or with
# Kipf & Welling's where their default has none, are labelled so. Both are
# paired with `plain`; `plain_no_l2` too, to give the decay's effect.
NO_L2_SUFFIX = "_no_l2"
WITH_L2_SUFFIX = "_with_l2"
# Entries that run the defaults on the seeds that chose no default; they are
# paired with the plain network's entry on the same seeds.
CONFIRM_SUFFIX = "_seeds_10_19"
VARIANT_SUFFIXES = (OFFICIAL_SUFFIX, NO_L2_SUFFIX, WITH_L2_SUFFIX,
                    CONFIRM_SUFFIX)
# The seeds of issue 17's targets ("Done when").
TARGET_SEEDS = (0, 1, 2)
CONFIDENCE = 0.95
TITLES = {
    "gcn": "Cora, 2-layer GCN (`examples/gcn.py`)",
    "fashion_mnist": "Fashion-MNIST, the main-job CNN "
                     "(`examples/fashion_mnist.py`)",
    "mlp": "Fashion-MNIST, the paper's MLP 784-256-256-10 "
           "(`examples/mlp.py`)",
    "cls_opt": "Fashion-MNIST, CLS-OPT on 2-D features "
               "(`examples/cls_opt.py`)",
}
# What a table's rows are, where the title and commands do not say it.
PLAIN_NOTES = {
    "gcn": "The plain network's first weight W₁ takes Kipf & Welling's "
           "L2 (5e-4·‖W₁‖²/2); gs, cp and ogd take none by default: between "
           "5e-4 and 0, each method's choice is the one with the higher "
           "mean validation accuracy over seeds 0–9, and the plain network "
           "kept 5e-4 (`examples/gcn.py`, `docs/recipes.md` item 9); "
           "`upt`, not offered the choice, keeps 5e-4. "
           "`plain_no_l2` ran with `--l2=0`; the `_with_l2` rows with "
           "5e-4, through `kernel_regularizer` on W₁ = R·V·diag(g), which "
           "with R orthogonal decays the gains; both are paired with "
           "`plain`. The official recipe decays P instead, as the released "
           "code. The `_seeds_10_19` rows run the defaults on fresh seeds, "
           "which chose nothing, and are paired with `plain_seeds_10_19`.",
    "cls_opt": "`plain` is the same network with a plain `Dense` head, "
               "trained beside CLS-OPT by the same command (its "
               "`compare`); `gs` is the `OPTClassifier` head (CLS-OPT, GS), "
               "which learns no gain (the paper's logits xᵀ·R·V); before "
               "training its prototypes are assigned to the classes from "
               "the class-mean training images "
               "(`OPTClassifier.assign_prototypes`, `--assign_prototypes`), "
               "so that classes that look alike get neighbouring "
               "prototypes.",
}
# Why a grid entry has no row, while it has none (`examples.reproduce`).
NOT_RUN = {
    ("mlp", "newton_schulz"): "Newton–Schulz (`newton_schulz`), an exact "
    "map too, has no row yet: at d = 784 each of its epochs takes minutes on "
    "the 2-core machine, so the grid trains it only when named "
    "(`python -m examples.reproduce --grid=full --scripts=mlp "
    "--labels=newton_schulz`, three seeds).",
}
# Chance accuracy in %, for the scripts whose test set is balanced.
CHANCE = {"fashion_mnist": 10.0, "mlp": 10.0}
# Issue 17's targets on top of issue 8's: (minimum vs plain, in points).
MARGINS = {"gcn": {"gs": -0.3, "cp": -0.3, "ogd": -0.3},
           "fashion_mnist": {"gs": -0.3, "cp": -0.3},
           "mlp": {"gs": -0.3},
           "cls_opt": {"gs": -2.0}}
# The paper's best OPT on Cora (OGD, 10 seeds): issue 17's long goal.
PAPER_BEST = {"gcn": 82.3}
# The main job's accuracy target (issue 17), on the default map.
MAIN_JOB_TARGET = 88.5
# Decimals of the accuracies (in %) per script.
DIGITS = {"gcn": 1}
# Paper numbers (Liu et al., CVPR 2021), accuracy %, where there is one.
# The paper's MLP numbers are on MNIST (error 6.05 → 5.11 % with GS), a task
# not available offline here, so the MLP rows have none.
PAPER = {
    ("gcn", "plain"): 81.3,
    ("gcn", "gs"): 81.9,
    ("gcn", "cp"): 82.0,
    ("gcn", "ogd"): 82.3,
}
# The README headline: (script, row title) × these labels.
HEADLINE_ROWS = (
    ("gcn", "Cora, 2-layer GCN"),
    ("fashion_mnist", "Fashion-MNIST, main-job CNN, 10 epochs"),
    ("mlp", "Fashion-MNIST, MLP 784-256-256-10, 10 epochs"),
    ("cls_opt", "Fashion-MNIST, CLS-OPT head on 2-D features (GS)"),
)
HEADLINE_LABELS = (("plain", "plain"), ("gs", "OPT GS"), ("cp", "OPT CP"),
                   ("ls", "OPT LS"), ("ogd", "OPT OGD"))
# Each README block sits between these two lines (with its name).
README_BEGIN = ("<!-- BEGIN GENERATED {name}: `python -m examples.reproduce` "
                "writes it from docs/results_summary.json -->")
README_END = "<!-- END GENERATED {name} -->"


def mean_std(entry, script, key="test_accuracy"):
    """`"mean ± std"` in %, or `"–"`."""
    summary = entry.get(key)
    if not summary:
        return "–"
    digits = DIGITS.get(script, 2)
    mean, std = 100 * summary["mean"], 100 * summary["std"]
    if len(summary["values"]) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def difference_to_plain(entry, plain, key="test_accuracy"):
    """`stats.paired_difference` (in points) on the seeds both ran."""
    if plain is None or entry is plain:
        return None
    seeds, values, base = stats.paired_by_seed(
        entry[key]["values"], entry["seeds"],
        plain[key]["values"], plain["seeds"],
    )
    if not seeds:
        return None
    return stats.paired_difference(
        [100 * v for v in values], [100 * v for v in base], CONFIDENCE
    )


def baseline_label(label):
    """The label of the row that row `label` is paired with."""
    if label.endswith(CONFIRM_SUFFIX):
        return PLAIN + CONFIRM_SUFFIX
    return PLAIN


def format_difference(difference):
    if difference is None:
        return "–"
    text = f"{difference['mean']:+.2f}"
    if difference["low"] is not None:
        text += f" [{difference['low']:+.2f}, {difference['high']:+.2f}]"
    return f"{text} ({difference['n']})"


def table_lines(script, entries):
    """The markdown table of one script's entries (a `{label: entry}`)."""
    lines = [
        "| method | seeds | validation | test | test − plain, paired "
        "[95 % CI] (pairs) | verdict | paper | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, entry in entries.items():
        difference = difference_to_plain(
            entry, entries.get(baseline_label(label)))
        paper = PAPER.get((script, label))
        lines.append(
            f"| {label} | {len(entry['seeds'])} | "
            f"{mean_std(entry, script, 'val_accuracy')} | "
            f"{mean_std(entry, script)} | "
            f"{format_difference(difference)} | "
            f"{'–' if difference is None else stats.verdict(difference)} | "
            f"{'–' if paper is None else paper} | `{entry['command']}` |"
        )
    return lines


def _test_means(entries):
    return {label: 100 * entry["test_accuracy"]["mean"]
            for label, entry in entries.items()
            if entry.get("test_accuracy")}


def _verdict(ok):
    return "met" if ok else "**missed**"


def _target_seed_means(entries):
    """Test means in % over `TARGET_SEEDS`, of the entries that ran more."""
    means = {}
    for label, entry in entries.items():
        values = dict(zip(entry["seeds"], entry["test_accuracy"]["values"]))
        if len(values) > len(TARGET_SEEDS) and all(
                seed in values for seed in TARGET_SEEDS):
            means[label] = 100 * sum(
                values[seed] for seed in TARGET_SEEDS) / len(TARGET_SEEDS)
    return means


def _margin_lines(script, plain, opt, context=""):
    """`label ≥ plain + margin` for the script's `MARGINS`, to 0.01 point."""
    lines = []
    for label, margin in MARGINS.get(script, {}).items():
        if label in opt and plain is not None:
            bound = plain + margin
            sign = "−" if margin < 0 else "+"
            lines.append(
                f"- {label} ≥ plain {sign} {abs(margin):g}{context}: "
                f"{opt[label]:.2f} vs {bound:.2f} "
                f"({_verdict(opt[label] >= bound)})")
    return lines


def _best_lines(script, plain, opt):
    """Best OPT ≥ plain, or ≥ the paper's best where there is one."""
    digits = DIGITS.get(script, 2)
    if not opt or script == "cls_opt":
        return []
    best = max(opt, key=opt.get)
    if script in PAPER_BEST:
        goal, name = PAPER_BEST[script], "the paper's best OPT"
    else:
        goal, name = plain, "plain"
    return [f"- best OPT ≥ {name}: {best} {opt[best]:.{digits}f} vs "
            f"{goal:.{digits}f} ({_verdict(opt[best] >= goal)})"]


def _absolute_lines(script, plain, opt):
    if script == "gcn":
        return [f"- plain within 1 point of Kipf & Welling's 81.5: "
                f"{plain:.1f} ({_verdict(abs(plain - 81.5) <= 1.0)})"]
    if script == "fashion_mnist" and DEFAULT_METHOD in opt:
        mine = opt[DEFAULT_METHOD]
        return [f"- the main job ({DEFAULT_METHOD}) ≥ {MAIN_JOB_TARGET:.1f}: "
                f"{mine:.2f} ({_verdict(mine >= MAIN_JOB_TARGET)})"]
    return []


def seeds_at_chance(script, entry):
    """The seeds of `entry` whose test accuracy is within 1 point of chance.

    Only for scripts whose test set is balanced (`CHANCE`): a network that
    predicts one class there scores exactly chance.
    """
    if script not in CHANCE:
        return []
    return [seed for seed, value in zip(entry["seeds"],
                                        entry["test_accuracy"]["values"])
            if 100 * value <= CHANCE[script] + 1.0]


def _ablation_line(script, entries, means):
    if "upt" not in means or DEFAULT_METHOD not in means:
        return []
    fn = (f"; FN ✗ (V trained too) {means['gs_fn']:.2f} vs FN ✓ "
          f"{means[DEFAULT_METHOD]:.2f}" if "gs_fn" in means else "")
    chance = seeds_at_chance(script, entries["upt"])
    collapsed = (
        f"; UPT collapses to chance ({CHANCE[script]:g} %) on seed"
        f"{'s' if len(chance) > 1 else ''} {', '.join(map(str, chance))}"
        if chance else "")
    return [f"- ablation: UPT (no orthogonality) {means['upt']:.2f} vs OPT "
            f"{means[DEFAULT_METHOD]:.2f}{fn}{collapsed} (paper, CIFAR-100 "
            "CNN-6 error: UPT 42.61, OPT FN ✗ 37.24, OPT FN ✓ 33.02)"]


def _weight_decay_lines(entries):
    """What the weight decay gives each method that also ran the other way."""
    differences = []
    for label, entry in entries.items():
        pair = ((entry, entries.get(label + NO_L2_SUFFIX))
                if label + NO_L2_SUFFIX in entries
                else (entries.get(label + WITH_L2_SUFFIX), entry))
        if None not in pair:
            difference = difference_to_plain(*pair)
            differences.append(f"{label} {format_difference(difference)}")
    if not differences:
        return []
    return ["- weight decay, test with − without (paired, points [95 % "
            "CI] (pairs)): " + "; ".join(differences)]


def _defaults(means):
    """The OPT methods at their defaults among `{label: mean}`."""
    return {label: mean for label, mean in means.items()
            if label != PLAIN and label not in ABLATIONS
            and not label.endswith(VARIANT_SUFFIXES)}


def target_lines(script, entries):
    """The targets of issues 8 and 17 for one table, on its mean accuracies."""
    means = _test_means(entries)
    plain = means.get(PLAIN)
    if plain is None:
        return []
    opt = _defaults(means)
    seed_means = _target_seed_means(entries)
    seeds = ", ".join(str(seed) for seed in TARGET_SEEDS)
    return (_absolute_lines(script, plain, opt)
            + _margin_lines(script, plain, opt)
            + _margin_lines(script, seed_means.get(PLAIN),
                            _defaults(seed_means), f", seeds {seeds}")
            + _best_lines(script, plain, opt)
            + _ablation_line(script, entries, means)
            + _weight_decay_lines(entries))


METHOD_NOTE = (
    "Accuracy in %, mean ± std over the seeds (the seeds column; std with "
    "ddof = 0). **test − plain** is the mean of the per-seed differences "
    "to the plain network over the seeds both ran (pairs), in points, with "
    "its 95 % confidence interval: Student's t with pairs − 1 degrees of "
    "freedom on the sample standard deviation of the differences "
    "(`examples/stats.py`). The verdict says *better* or *worse* only when "
    "that interval excludes 0; three pairs give a t quantile of 4.30, so "
    "small differences cannot be told from noise."
)


def energy_lines(entries):
    """CLS-OPT's prototype energy next to its references, if recorded."""
    energy = next((entry["prototype_energy"] for entry in entries.values()
                   if entry.get("prototype_energy")), None)
    if energy is None:
        return []
    names = {"prototypes": "`OPTClassifier`'s prototypes V "
                           "(`initializers.MinimumEnergy`)",
             "gaussian": "Gaussian prototypes (median of 100 draws)",
             "regular": "equally spaced directions (the minimum on the "
                        "circle)"}
    lines = ["", "Hyperspherical energy of the class prototypes "
             "(`keras_opt.energy.hyperspherical_energy`, mean over the "
             "seeds; R·V has V's energy):", "",
             "| prototypes | s = 1 | s = 2 |", "|---|---|---|"]
    for kind, name in names.items():
        if energy.get(kind):
            lines.append(f"| {name} | {energy[kind]['s=1']:.4f} | "
                         f"{energy[kind]['s=2']:.4f} |")
    return lines


def script_section(script, entries, figures=()):
    """One script's heading, table, targets and links to its `figures`.

    `figures` are the file names of the PNGs that exist beside the page.
    """
    lines = [f"## {TITLES.get(script, script)}", ""]
    if script in PLAIN_NOTES:
        lines += [PLAIN_NOTES[script], ""]
    for (name, label), note in NOT_RUN.items():
        if name == script and label not in entries:
            lines += [note, ""]
    lines += table_lines(script, entries)
    lines += energy_lines(entries)
    targets = target_lines(script, entries)
    if targets:
        lines += ["", "Targets (issues 8 and 17, on the means):", ""] + targets
    if f"{script}_accuracy.png" in figures:
        lines += ["", f"![test accuracy, {script}]({script}_accuracy.png)"]
    dynamics = [label for label in entries
                if f"{script}_{label}_dynamics.png" in figures]
    if dynamics:
        lines += [""] + [f"![energy and orthogonality, {script} {label}]"
                         f"({script}_{label}_dynamics.png)"
                         for label in dynamics]
    if f"{script}_features.png" in figures:
        lines += ["", "![test features and class directions, both heads, "
                  f"last seed]({script}_features.png)"]
    return lines + [""]


def _pct_or_dash(summary):
    if not summary:
        return "–"
    return mean_std({"x": summary}, "small_data", "x")


def _point(entry):
    return (f"{entry['learning_rate']:g}, "
            f"{entry['weight_decay'] or 0:g}")


COSINE = " (the learning rate decayed to 0 on a cosine)"


def _training_minutes(data):
    """The training time of every run of a small_data experiment, in min."""
    entries = [point for tuning in data["tuning"].values()
               for point in tuning["points"]]
    entries += list(data["evaluation"].values())
    return sum(sum(e["train_time_s"]["values"]) for e in entries) / 60


def small_data_lines(data):
    """The section of `examples/small_data.py`'s results (its JSON)."""
    protocol = data["protocol"]
    lines = [
        "## Fashion-MNIST on 5,000 training images: generalization "
        "(`examples/small_data.py`)", "",
        f"The main-job network trained on the first {protocol['train_size']:,}"
        f" training images for {protocol['epochs']} epochs"
        f"{COSINE if protocol.get('cosine_decay') else ''}"
        ", the weights of the epoch with the best validation accuracy kept; "
        "validation on "
        f"the last {protocol['validation_size']:,}, test on the full test "
        "set. Every method had the same tuning budget: the grid "
        "(learning rate, weight decay) below, each point trained on seeds "
        f"{', '.join(protocol['tuning_seeds'])}, the point with the best "
        "mean validation accuracy chosen; then each method at its point on "
        f"seeds {', '.join(protocol['seeds'])}. Command: "
        f"`{data['command']}` (its runs trained for "
        f"{_training_minutes(data):.0f} min in all on this machine; its "
        f"last process ran {data['total_time_s'] / 60:.0f} min, reusing the "
        "runs of earlier ones).", "",
        "| method | tuning: (lr, weight decay) → validation % | chosen |",
        "|---|---|---|",
    ]
    for method, tuning in data["tuning"].items():
        points = "; ".join(
            f"({_point(p)}) → {_pct_or_dash(p['val_accuracy'])}"
            for p in tuning["points"])
        lines.append(f"| {method} | {points} | {_point(tuning['chosen'])} |")
    lines += [
        "", "| method | seeds | final train | best epoch (median) | "
        "validation | test | test − plain, paired [95 % CI] (pairs) | "
        "verdict |", "|---|---|---|---|---|---|---|---|"]
    for method, entry in data["evaluation"].items():
        comparison = data["comparison"].get(method)
        epochs = sorted(entry["best_epoch"])
        lines.append(
            f"| {method} | {len(entry['seeds'])} | "
            f"{_pct_or_dash(entry['train_accuracy'])} | "
            f"{epochs[len(epochs) // 2]} | "
            f"{_pct_or_dash(entry['val_accuracy'])} | "
            f"{_pct_or_dash(entry['test_accuracy'])} | "
            f"{format_difference(comparison)} | "
            f"{'–' if comparison is None else comparison['verdict']} |")
    return lines + [""]


def _claims(script, entries, label, name, baseline, context=""):
    """`["<name> on <script><context> is better (…)"]`, or `[]`.

    The verdict of `entries[label]` against `entries[baseline]`, only when
    its interval excludes 0.
    """
    entry = entries.get(label)
    if entry is None:
        return []
    difference = difference_to_plain(entry, entries.get(baseline))
    if difference is None or stats.verdict(difference) not in (
            "better", "worse"):
        return []
    return [f"{name} on {script}{context} is {stats.verdict(difference)} "
            f"({format_difference(difference)})"]


def headline_lines(summary):
    """The README's headline table and the verdicts of its OPT cells."""
    header = "| task (test accuracy %, mean ± std (seeds)) | " + " | ".join(
        title for _, title in HEADLINE_LABELS) + " |"
    lines = [header, "|---|" + "---|" * len(HEADLINE_LABELS)]
    claims = []
    for script, title in HEADLINE_ROWS:
        entries = summary.get(script, {})
        papers = [PAPER.get((script, label)) for label, _ in HEADLINE_LABELS]
        if any(p is not None for p in papers):
            title += " (paper: " + " / ".join(
                "–" if p is None else str(p) for p in papers) + ")"
        cells = []
        for label, name in HEADLINE_LABELS:
            entry = entries.get(label)
            if entry is None:
                cells.append("–")
                continue
            cells.append(f"{mean_std(entry, script)} ({len(entry['seeds'])})")
            claims += _claims(script, entries, label, name, PLAIN)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
        for label, name in HEADLINE_LABELS:
            if label != PLAIN and label + WITH_L2_SUFFIX in entries:
                claims += _claims(script, entries, label, name,
                                  PLAIN + NO_L2_SUFFIX,
                                  ", both without weight decay,")
            claims += _claims(script, entries, label + CONFIRM_SUFFIX, name,
                              PLAIN + CONFIRM_SUFFIX, ", seeds 10–19,")
    lines += ["", "Paired differences to plain with 95 % Student-t intervals "
              "are in docs/results.md; an interval that excludes 0: "
              + ("; ".join(claims) if claims else "none") + "."]
    return lines


def main_job_lines(summary):
    """The README's sentence on the main job's accuracy."""
    entries = summary.get("fashion_mnist", {})
    gs, plain = entries.get(DEFAULT_METHOD), entries.get(PLAIN)
    if gs is None:
        return ["(no main-job results in docs/results_summary.json)"]
    values = ", ".join(f"{100 * v:.1f}" for v in gs["test_accuracy"]["values"])
    line = (f"reaches {mean_std(gs, 'fashion_mnist')} % test accuracy "
            f"(seeds {', '.join(str(s) for s in gs['seeds'])}: {values} %")
    if plain is not None:
        line += (f"; the plain network, same recipe: "
                 f"{mean_std(plain, 'fashion_mnist')} %")
    return [line + ")."]


README_BLOCKS = {"headline": headline_lines, "main_job": main_job_lines}


def replace_block(text, name, lines):
    """`text` with the lines of README block `name` replaced."""
    begin, end = README_BEGIN.format(name=name), README_END.format(name=name)
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(
            f"The README has no generated block `{name}`. Expected the lines "
            f"{begin!r} and {end!r} around it."
        )
    block = "\n".join([begin, *lines, end])
    return pattern.sub(lambda _: block, text, count=1)


def readme_text(text, summary):
    """`text` with every generated block rewritten from `summary`."""
    for name, make_lines in README_BLOCKS.items():
        text = replace_block(text, name, make_lines(summary))
    return text


def update_readme(path, summary):
    """Rewrites the README's generated blocks from `summary`; returns path."""
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(readme_text(text, summary))
    return path
