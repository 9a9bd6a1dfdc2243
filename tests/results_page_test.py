"""Tests of examples/results_page.py and of the docs it generates.

The README's generated blocks and docs/results.md must equal what the
generator writes from docs/results_summary.json: no number in them is
typed by hand.
"""

import json
import os
import re
from unittest import mock

from absl.testing import absltest

from examples import gcn
from examples import reproduce
from examples import results_page
from examples import stats
from tests import test_case

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*path):
    with open(os.path.join(_ROOT, *path)) as f:
        return f.read()


def _entry(values, seeds=None, command="python -m examples.x"):
    seeds = list(range(len(values))) if seeds is None else seeds
    summary = {"mean": sum(values) / len(values), "std": 0.0,
               "values": values}
    return {"command": command, "seeds": seeds, "val_accuracy": summary,
            "test_accuracy": summary}


class DocsFromResultsTest(test_case.TestCase):
    def setUp(self):
        super().setUp()
        self.summary = json.loads(_read("docs", reproduce.SUMMARY_FILE))

    def test_readme_blocks_equal_the_results_file(self):
        readme = _read("README.md")
        self.assertEqual(results_page.readme_text(readme, self.summary),
                         readme)

    def test_results_page_equals_the_results_file(self):
        output_dir = self.get_temp_dir()
        small_data = reproduce.load_summary(
            os.path.join(_ROOT, "docs", reproduce.SMALL_DATA_FILE))
        figures = {script: reproduce.stored_figures(
            os.path.join(_ROOT, "docs"), script, entries)
            for script, entries in self.summary.items()}
        path = reproduce.write_page(self.summary, output_dir, "full",
                                    figures, small_data or None)
        with open(path) as f:
            generated = f.read().splitlines()
        stored = _read("docs", "results.md").splitlines()
        # The first paragraph names the date and the machine.
        self.assertEqual(generated[3:], stored[3:])

    def test_cora_weight_decay_defaults_follow_validation(self):
        # Each method's default, 5e-4 or none, is the one with the higher
        # mean validation accuracy over seeds 0–9 (a tie keeps 5e-4).
        entries = self.summary["gcn"]
        chosen = {}
        for label in ("plain", "gs", "cp", "ogd"):
            if label + results_page.WITH_L2_SUFFIX in entries:
                decay = entries[label + results_page.WITH_L2_SUFFIX]
                none = entries[label]
            else:
                decay = entries[label]
                none = entries[label + results_page.NO_L2_SUFFIX]
            self.assertEqual(decay["seeds"], list(range(10)), label)
            self.assertEqual(none["seeds"], list(range(10)), label)
            chosen[label] = (none["val_accuracy"]["mean"]
                             > decay["val_accuracy"]["mean"])
        self.assertEqual(
            {label for label, no_decay in chosen.items() if no_decay},
            set(gcn.NO_DECAY_METHODS))

    def test_every_stored_entry_has_its_seeds(self):
        for script, entries in self.summary.items():
            for label, entry in entries.items():
                seeds = re.search(r"--seeds=([\d,]+)", entry["command"])
                self.assertEqual(
                    [int(s) for s in seeds.group(1).split(",")],
                    entry["seeds"], (script, label))
                for key in ("val_accuracy", "test_accuracy"):
                    self.assertLen(entry[key]["values"], len(entry["seeds"]))


class ResultsPageTest(test_case.TestCase):
    def test_paired_on_common_seeds(self):
        plain = _entry([0.80, 0.81, 0.82, 0.83], seeds=[0, 1, 2, 3])
        opt = _entry([0.84, 0.80], seeds=[3, 0])
        difference = results_page.difference_to_plain(opt, plain)
        expected = stats.paired_difference([84, 80], [83, 80])
        self.assertEqual(difference["n"], 2)
        self.assertAllClose(difference["mean"], expected["mean"])
        self.assertAllClose(difference["high"], expected["high"])

    def test_verdict_column(self):
        summary = {"mlp": {"plain": _entry([0.80, 0.81, 0.82]),
                           "gs": _entry([0.85, 0.86, 0.88]),
                           "cp": _entry([0.70, 0.90, 0.80])}}
        rows = {line.split(" | ")[0][2:]: line.split(" | ")
                for line in results_page.table_lines("mlp", summary["mlp"])}
        self.assertEqual(rows["gs"][5], "better")
        self.assertEqual(rows["cp"][5], "no difference shown")
        self.assertEqual(rows["plain"][4], "–")
        self.assertIn("[+", rows["gs"][4])
        headline = "\n".join(results_page.headline_lines(summary))
        self.assertIn("OPT GS on mlp is better", headline)
        self.assertNotIn("OPT CP on mlp", headline)

    def test_targets_of_issue_17(self):
        entries = {"plain": _entry([0.810, 0.812]),
                   "gs": _entry([0.808, 0.809]),
                   "cp": _entry([0.800, 0.804]),
                   "cp_official": _entry([0.90, 0.90])}
        lines = results_page.target_lines("gcn", entries)
        self.assertIn("- gs ≥ plain − 0.3: 80.85 vs 80.80 (met)", lines)
        self.assertIn("- cp ≥ plain − 0.3: 80.20 vs 80.80 (**missed**)", lines)
        # The official-recipe entry is not an OPT method of the targets.
        self.assertIn("- best OPT ≥ the paper's best OPT: gs 80.8 vs 82.3 "
                      "(**missed**)", lines)
        heads = {"plain": _entry([0.79]), "gs": _entry([0.775])}
        self.assertEqual(results_page.target_lines("cls_opt", heads),
                         ["- gs ≥ plain − 2: 77.50 vs 77.00 (met)"])
        main_job = results_page.target_lines(
            "fashion_mnist", {"plain": _entry([0.88]), "gs": _entry([0.884])})
        self.assertIn("- the main job (gs) ≥ 88.5: 88.40 (**missed**)",
                      main_job)

    def test_weight_decay_variants_pair_with_plain(self):
        entries = {"plain": _entry([0.81, 0.82, 0.83]),
                   "gs": _entry([0.80, 0.83, 0.82]),
                   "plain_no_l2": _entry([0.79, 0.81, 0.81]),
                   "gs_with_l2": _entry([0.80, 0.82, 0.83])}
        rows = {line.split(" | ")[0][2:]: line.split(" | ")
                for line in results_page.table_lines("gcn", entries)}
        self.assertEqual(rows["plain_no_l2"][4], "-1.67 [-3.10, -0.23] (3)")
        self.assertEqual(rows["gs_with_l2"][4], "-0.33 [-1.77, +1.10] (3)")
        self.assertEqual(rows["gs"][4], "-0.33 [-3.20, +2.54] (3)")
        lines = results_page.target_lines("gcn", entries)
        # The variants are not the defaults that the targets judge.
        self.assertIn("- best OPT ≥ the paper's best OPT: gs 81.7 vs 82.3 "
                      "(**missed**)", lines)
        self.assertFalse([line for line in lines if "_l2 ≥" in line])
        self.assertEqual(
            lines[-1],
            "- weight decay, test with − without (paired, points [95 % CI] "
            "(pairs)): plain +1.67 [+0.23, +3.10] (3); "
            "gs +0.00 [-2.48, +2.48] (3)")
        entries["gs"] = _entry([0.82, 0.84, 0.83])
        headline = "\n".join(results_page.headline_lines({"gcn": entries}))
        self.assertIn("OPT GS on gcn, both without weight decay, "
                      "is better (+2.67 [+1.23, +4.10] (3))", headline)
        self.assertNotIn("OPT GS on gcn is", headline)
        del entries["gs_with_l2"]  # gs's default would then have the decay
        headline = "\n".join(results_page.headline_lines({"gcn": entries}))
        self.assertNotIn("without weight decay", headline)

    def test_fresh_seeds_pair_with_plain_on_the_same_seeds(self):
        seeds = list(range(10, 13))
        entries = {"plain": _entry([0.81, 0.82, 0.83]),
                   "gs": _entry([0.81, 0.82, 0.83]),
                   "plain_seeds_10_19": _entry([0.80, 0.81, 0.80], seeds),
                   "gs_seeds_10_19": _entry([0.82, 0.83, 0.83], seeds)}
        rows = {line.split(" | ")[0][2:]: line.split(" | ")
                for line in results_page.table_lines("gcn", entries)}
        self.assertEqual(rows["gs_seeds_10_19"][4],
                         "+2.33 [+0.90, +3.77] (3)")
        self.assertEqual(rows["plain_seeds_10_19"][4], "–")
        headline = "\n".join(results_page.headline_lines({"gcn": entries}))
        self.assertIn("OPT GS on gcn, seeds 10–19, is better "
                      "(+2.33 [+0.90, +3.77] (3))", headline)
        lines = results_page.target_lines("gcn", entries)
        self.assertFalse([line for line in lines if "_seeds_10_19" in line])

    def test_targets_on_seeds_0_to_2_of_longer_entries(self):
        entries = {"plain": _entry([0.81, 0.82, 0.83, 0.70]),
                   "gs": _entry([0.80, 0.80, 0.80, 0.85]),
                   "cp": _entry([0.81, 0.82, 0.83, 0.84], seeds=[1, 2, 3, 4])}
        lines = results_page.target_lines("gcn", entries)
        self.assertIn("- gs ≥ plain − 0.3: 81.25 vs 78.70 (met)", lines)
        self.assertIn("- gs ≥ plain − 0.3, seeds 0, 1, 2: 80.00 vs 81.70 "
                      "(**missed**)", lines)
        # cp lacks seed 0, so it has no line on seeds 0–2.
        self.assertFalse([line for line in lines
                          if line.startswith("- cp ≥") and "seeds" in line])

    def test_ablation_names_the_seeds_at_chance(self):
        entries = {"plain": _entry([0.88, 0.88, 0.88]),
                   "gs": _entry([0.89, 0.89, 0.89]),
                   "upt": _entry([0.10, 0.83, 0.1099], seeds=[4, 5, 6])}
        line = results_page.target_lines("fashion_mnist", entries)[-1]
        self.assertIn("UPT collapses to chance (10 %) on seeds 4, 6 (", line)
        entries["upt"] = _entry([0.10, 0.83, 0.112], seeds=[4, 5, 6])
        line = results_page.target_lines("fashion_mnist", entries)[-1]
        self.assertIn("on seed 4 (", line)
        entries["upt"] = _entry([0.83])
        line = results_page.target_lines("fashion_mnist", entries)[-1]
        self.assertNotIn("chance", line)
        # Cora's test set is not balanced: chance is not one number there.
        entries["upt"] = _entry([0.10])
        self.assertNotIn("chance", results_page.target_lines(
            "gcn", entries)[-1])

    def test_prototype_energy_table(self):
        energy = {"prototypes": {"s=1": 0.86, "s=2": 0.92},
                  "gaussian": {"s=1": 1.95, "s=2": 19.3}, "regular": None}
        lines = results_page.energy_lines(
            {"plain": _entry([0.8]),
             "gs": {**_entry([0.8]), "prototype_energy": energy}})
        self.assertIn("| Gaussian prototypes (median of 100 draws) | 1.9500 | "
                      "19.3000 |", lines)
        self.assertFalse(any("equally spaced" in line for line in lines))
        self.assertEqual(results_page.energy_lines({"gs": _entry([0.8])}), [])

    def test_replace_block(self):
        begin = results_page.README_BEGIN.format(name="headline")
        end = results_page.README_END.format(name="headline")
        text = f"intro\n{begin}\nold\n{end}\noutro\n"
        self.assertEqual(results_page.replace_block(text, "headline", ["new"]),
                         f"intro\n{begin}\nnew\n{end}\noutro\n")
        with self.assertRaisesRegex(ValueError, "main_job"):
            results_page.replace_block(text, "main_job", ["x"])


class ReproduceFromStoredResultsTest(test_case.TestCase):
    def test_stored_entries_are_not_rerun(self):
        output_dir = self.get_temp_dir()
        grid = {"seeds": [0, 1], "runs": [("gcn", "plain", "plain", []),
                                           ("gcn", "gs", "gs", [])]}
        stored = {"gcn": {
            "plain": _entry([0.8, 0.81], command=reproduce._command(
                "gcn", "plain", [], [0, 1])),
            "gs": _entry([0.82, 0.83], command="an older command"),
        }}
        summary_path = os.path.join(output_dir, "stored.json")
        with open(summary_path, "w") as f:
            json.dump(stored, f)
        with mock.patch.object(reproduce, "run_entry") as run_entry:
            reproduce.reproduce(grid, output_dir, self.get_temp_dir(),
                                summary=summary_path, scripts=["none"])
        run_entry.assert_not_called()  # gs is stale and not selected
        with open(os.path.join(output_dir, reproduce.SUMMARY_FILE)) as f:
            self.assertEqual(json.load(f), {"gcn": {"plain": stored["gcn"][
                "plain"]}})

    def test_entries_run_when_named_are_not_started_by_the_grid(self):
        output_dir = self.get_temp_dir()
        grid = {"seeds": [0], "runs": [("mlp", "plain", "plain", []),
                                       ("mlp", "newton_schulz",
                                        "newton_schulz", [])],
                "run_when_named": {("mlp", "newton_schulz")}}
        summary = {"mean": 0.8, "std": 0.0, "values": [0.8]}
        results = {"seeds": [0], "runs": [{"train_time_s": 1.0}],
                   "summary": {"val_accuracy": summary,
                               "test_accuracy": summary}}
        with mock.patch.object(reproduce, "run_entry",
                               return_value=(results, "cmd")) as run_entry, \
                mock.patch.object(reproduce, "_plots", return_value=[]):
            reproduce.reproduce(grid, output_dir, self.get_temp_dir(),
                                summary=os.path.join(output_dir, "none"))
            self.assertEqual([c.args[:2] for c in run_entry.call_args_list],
                             [("mlp", "plain")])
            with open(os.path.join(output_dir, "results.md")) as f:
                self.assertIn("Newton–Schulz (`newton_schulz`), an exact map "
                              "too, has no row yet", f.read())
            reproduce.reproduce(grid, output_dir, self.get_temp_dir(),
                                summary=os.path.join(output_dir, "none"),
                                labels=["newton_schulz"])
            self.assertEqual(run_entry.call_args_list[-1].args[:2],
                             ("mlp", "newton_schulz"))
            with open(os.path.join(output_dir, "results.md")) as f:
                self.assertNotIn("has no row yet", f.read())


class CompareEntryTest(test_case.TestCase):
    def test_a_compared_plain_network_is_the_plain_row(self):
        plain = {"runs": [{"train_time_s": 1.0}], "seeds": [0],
                 "summary": {"val_accuracy": {"mean": 0.7, "std": 0.0,
                                              "values": [0.7]},
                             "test_accuracy": {"mean": 0.6, "std": 0.0,
                                               "values": [0.6]}}}
        results = {**plain, "compare": plain,
                   "prototype_energy": {"prototypes": {"s=1": 1.0}}}
        entry = reproduce.summary_entry(results, "python -m examples.x")
        self.assertEqual(entry["compare"]["test_accuracy"]["values"], [0.6])
        self.assertEqual(entry["prototype_energy"],
                         results["prototype_energy"])
        tables = {}
        reproduce._add_entry(tables, "cls_opt", "gs", entry)
        self.assertEqual(list(tables["cls_opt"]), ["plain", "gs"])
        self.assertIs(tables["cls_opt"]["plain"], entry["compare"])
        # A plain entry of the grid's own is kept.
        own = {"cls_opt": {"plain": "own"}}
        reproduce._add_entry(own, "cls_opt", "gs", entry)
        self.assertEqual(own["cls_opt"]["plain"], "own")


if __name__ == "__main__":
    absltest.main()
