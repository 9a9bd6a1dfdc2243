"""Tests of the example scripts (examples/*.py) on tiny data, offline.

Fashion-MNIST scripts train on synthetic Fashion-MNIST-shaped data; the GCN
trains for a few epochs on the vendored Cora. Each test reads what the
script reports (its results.json) and checks it.
"""

import json
import os
import warnings

import keras
import numpy as np
import tensorflow as tf
from absl import flags
from absl.testing import absltest

import keras_opt
from examples import common
from examples import dynamics_table
from examples import fashion_mnist
from examples import gcn
from examples import mlp
from examples import planetoid
from examples import reproduce
from examples import results_page
from examples import small_data
from tests import test_case


def _synthetic_splits(train_size=320, test_size=160, seed=0):
    """Fashion-MNIST-shaped data whose class is a bright block's position."""
    rng = np.random.default_rng(seed)

    def make(size):
        labels = rng.integers(0, 10, size=size)
        images = rng.integers(0, 60, size=(size, 28, 28, 1))
        for i, label in enumerate(labels):
            row, col = 5 * (label // 2) + 2, 14 * (label % 2)
            images[i, row : row + 5, col : col + 14] = 255
        return tf.data.Dataset.from_tensor_slices(
            (images.astype(np.uint8), labels.astype(np.int64))
        )

    return {"train": make(train_size), "test": make(test_size)}


def _flag_values(module, argv=()):
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    flag_values([module.__name__, "--verbose=0", *argv])
    return flag_values


def _read_results(model_dir):
    with open(os.path.join(model_dir, common.RESULTS_FILE)) as f:
        return json.load(f)


class ResultsAssertions:
    def assertResults(self, results, method, seeds, epochs, exact=None):
        """Checks a results.json: keys, accuracies, orthogonality, energy."""
        self.assertEqual(results["method"], method)
        self.assertEqual(results["seeds"], seeds)
        self.assertLen(results["runs"], len(seeds))
        for key in ("val_accuracy", "test_accuracy"):
            summary = results["summary"][key]
            values = [run[key] for run in results["runs"]]
            self.assertEqual(summary["values"], values)
            self.assertAllClose(summary["mean"], np.mean(values))
            self.assertAllClose(summary["std"], np.std(values))
            for value in values:
                self.assertBetween(value, 0.0, 1.0)
        exact = method in common.EXACT_METHODS if exact is None else exact
        for run in results["runs"]:
            self.assertEqual(run["epochs_run"], epochs)
            self.assertLen(run["history"]["test_accuracy"], epochs)
            errors = run["orthogonality_errors"]
            if method == common.PLAIN:
                self.assertEmpty(errors)
            else:
                self.assertNotEmpty(errors)
            for name, error in errors.items():
                self.assertLen(run["history"][f"orthogonality/{name}"], epochs)
                if exact:
                    self.assertLess(error, 1e-5, name)
                    # R orthogonal: the neurons keep the energy of V.
                    first, last = run["energy_first_last"][name]
                    self.assertAllClose(last, first, rtol=1e-5)


class CommonTest(test_case.TestCase):
    def test_methods(self):
        flag_values = _flag_values(fashion_mnist, ["--method=ogd"])
        methods = set(flag_values["method"].parser.enum_values)
        self.assertEqual(
            methods,
            {common.PLAIN, "orthogonal", "srip", "mhe", "hs_mhe"}
            | set(keras_opt.orthogonalizers.ALIASES),
        )
        for method in methods - {common.PLAIN}:
            self.assertEqual(common.get_method(method).name, method)
        self.assertFalse(common.get_method(common.PLAIN).is_opt)
        with self.assertRaises(flags.IllegalFlagValueError):
            _flag_values(fashion_mnist, ["--method=qr"])

    def test_seeds(self):
        self.assertEqual(common.seeds(_flag_values(gcn, ["--seed=4"])), [4])
        flag_values = _flag_values(gcn, ["--seeds=3,1", "--seed=4"])
        self.assertEqual(common.seeds(flag_values), [3, 1])
        with self.assertRaisesRegex(ValueError, "--seeds"):
            common.seeds(_flag_values(gcn, ["--seeds=a"]))

    def test_optimizer_flags(self):
        cases = (
            (fashion_mnist, [], keras_opt.optimizers.StiefelSGD, True),
            (gcn, ["--nouse_group_form"], keras_opt.optimizers.StiefelAdam, False),
        )
        for module, argv, cls, group_form in cases:
            optimizer = common.build_optimizer(_flag_values(module, argv))
            self.assertIsInstance(optimizer, cls)
            self.assertIs(optimizer.use_group_form, group_form)

    def test_cosine_decay_flag(self):
        constant = common.build_optimizer(_flag_values(fashion_mnist))
        self.assertIsInstance(constant.get_config()["learning_rate"], float)
        decayed = common.build_optimizer(
            _flag_values(fashion_mnist, ["--cosine_decay_steps=100"])
        )
        schedule = decayed.get_config()["learning_rate"]
        self.assertEqual(schedule["class_name"], "CosineDecay")
        self.assertEqual(schedule["config"]["decay_steps"], 100)
        self.assertAllClose(schedule["config"]["initial_learning_rate"], 0.1)

    def test_exact_methods_follow_the_registry(self):
        for name in keras_opt.orthogonalizers.ALIASES:
            orthogonalizer = keras_opt.orthogonalizers.get(name)
            self.assertEqual(
                name in common.EXACT_METHODS,
                orthogonalizer.is_exact or orthogonalizer.is_stiefel,
                name,
            )
        self.assertContainsSubset({"gs", "cp", "ls", "ogd"},
                                  common.EXACT_METHODS)
        self.assertNoCommonElements({"or", "upt"}, common.EXACT_METHODS)

    def test_rotation_learning_rate_default_is_what_the_help_says(self):
        for optimizer in ("sgd", "adam"):
            flag_values = _flag_values(
                gcn, [f"--optimizer={optimizer}", "--learning_rate=0.05"]
            )
            built = common.build_optimizer(flag_values)
            factor = type(built).default_rotation_learning_rate_factor
            self.assertAllClose(
                keras.ops.convert_to_numpy(built.rotation_learning_rate),
                factor * 0.05,
            )
            self.assertIn(
                f"{factor:g}× for " + {"sgd": "--optimizer=sgd", "adam": "adam"}[optimizer],
                flag_values["rotation_learning_rate"].help,
            )

    def test_recipe_flag(self):
        flag_values = _flag_values(fashion_mnist)
        self.assertEqual(
            sorted(flag_values["recipe"].parser.enum_values),
            sorted(keras_opt.recipes.names()),
        )
        self.assertEqual(flag_values.recipe, "default")
        from examples import cifar

        self.assertEqual(_flag_values(cifar).recipe, "official")
        official = _flag_values(fashion_mnist, ["--recipe=official"])
        self.assertEqual(common.get_method(official).recipe.name, "official")
        self.assertEqual(common.opt_layer_kwargs(official)["recipe"],
                         "official")
        with self.assertRaises(flags.IllegalFlagValueError):
            _flag_values(fashion_mnist, ["--recipe=paper"])

    def test_rotation_learning_rate_is_the_recipes(self):
        from unittest import mock

        factors = {"StiefelSGD": 0.5, "StiefelAdam": 3.0}
        with mock.patch.object(keras_opt.recipes.OFFICIAL,
                               "rotation_learning_rate_factors", factors):
            for optimizer, factor in (("sgd", 0.5), ("adam", 3.0)):
                built = common.build_optimizer(_flag_values(gcn, [
                    "--recipe=official", f"--optimizer={optimizer}",
                    "--learning_rate=0.04"]))
                self.assertAllClose(
                    keras.ops.convert_to_numpy(built.rotation_learning_rate),
                    factor * 0.04)
            decayed = common.build_optimizer(_flag_values(gcn, [
                "--recipe=official", "--learning_rate=0.04",
                "--cosine_decay_steps=10"]))
            rate = decayed._rotation_learning_rate
            self.assertAllClose(float(rate(0)), 3.0 * 0.04)
            self.assertAllClose(float(rate(10)), 0.0)
            explicit = common.build_optimizer(_flag_values(gcn, [
                "--recipe=official", "--rotation_learning_rate=0.7"]))
            self.assertAllClose(
                keras.ops.convert_to_numpy(explicit.rotation_learning_rate),
                0.7)

    def test_rotation_l2_follows_the_recipe(self):
        cases = (
            ([], "gs", 0.0),
            (["--recipe=official"], "gs", 5e-4),
            (["--recipe=official"], "ogd", 0.0),  # the Stiefel step
            (["--recipe=official", "--rotation_l2=0"], "gs", 0.0),
            (["--rotation_l2=1e-3"], "cp", 1e-3),
            (["--recipe=official"], "plain", 0.0),
        )
        for argv, method, expected in cases:
            flag_values = _flag_values(gcn, [*argv, f"--method={method}"])
            self.assertEqual(
                gcn.rotation_l2(flag_values, common.get_method(flag_values)),
                expected, (argv, method),
            )

    def test_weight_decay_defaults_by_method_and_recipe(self):
        cases = (
            ([], "plain", 5e-4),
            ([], "orthogonal", 5e-4),
            ([], "hr", 5e-4),  # not chosen on validation: Kipf's
            *[([], method, 0.0) for method in gcn.NO_DECAY_METHODS],
            (["--recipe=official"], "gs", 5e-4),
            (["--l2=1e-3"], "gs", 1e-3),
            (["--l2=0"], "plain", 0.0),
        )
        for argv, method, expected in cases:
            flag_values = _flag_values(gcn, [*argv, f"--method={method}"])
            self.assertEqual(gcn.weight_decay(flag_values), expected,
                             (argv, method))

    def test_exactly_one_l2_decays_the_first_layer(self):
        cases = (
            (["--l2=5e-4"], "gs", (5e-4, 0.0)),  # on W₁ = R·V·diag(g)
            ([], "plain", (5e-4, 0.0)),
            (["--recipe=official"], "gs", (0.0, 5e-4)),   # on P
            (["--recipe=official"], "ogd", (5e-4, 0.0)),  # no decay on R
            (["--rotation_l2=1e-3"], "cp", (0.0, 1e-3)),
        )
        for argv, method, expected in cases:
            flag_values = _flag_values(gcn, [*argv, f"--method={method}"])
            method = common.get_method(flag_values)
            self.assertEqual(
                (gcn.kernel_l2(flag_values, method),
                 gcn.rotation_l2(flag_values, method)),
                expected, argv,
            )
        model = gcn.build_model("gs", np.eye(4, dtype="float32"),
                                np.eye(4, dtype="float32"), 2, hidden_units=3,
                                l2=5e-4)
        first, second = keras_opt.layers.opt_layers(model)
        self.assertAllClose(first.kernel_regularizer.l2, 2.5e-4)
        self.assertIsNone(second.kernel_regularizer)

    def test_unknown_default_raises(self):
        with self.assertRaisesRegex(ValueError, "epoch"):
            common.define_flags(flags.FlagValues(), epoch=3)


class DynamicsTableTest(test_case.TestCase):
    def test_rows_and_epochs(self):
        history = {"loss": [2.0, 1.5, 1.25], "val_accuracy": [0.5, 0.6, 0.7],
                   "rotation_step/a": [3.0, 2.0, 1.0],
                   "rotation_distance/a": [3.0, 4.5, 5.0],
                   "gain/a": [1.0, 1.1, 1.2], "rotation_step/b": [9.0] * 3}
        lines = dynamics_table.table_lines(
            {"cp": {"runs": [{"history": history}]}}, [1, 3, 4], "a")
        self.assertEqual(lines[0], "| run | quantity | epoch 1 | epoch 3 | "
                                   "epoch 4 |")
        self.assertEqual(lines[2], "| cp | train loss | 2.000 | 1.250 |  |")
        self.assertIn("| cp | ‖R_t − R_t−1‖_F | 3.00 | 1.00 |  |", lines)
        self.assertIn("| cp | ‖R − I‖_F | 3.0 | 5.0 |  |", lines)
        self.assertLen(lines, 7)  # header, rule, five quantities of layer a

    def test_late_training_row_averages_the_seeds(self):
        runs = [
            {"history": {"val_accuracy": [0.5, 0.7, 0.6, 0.7],
                         "test_accuracy": [0.4, 0.8, 0.6, 0.9]}},
            {"history": {"val_accuracy": [0.6, 0.6, 0.8, 0.7],
                         "test_accuracy": [0.5, 0.5, 0.7, 0.9]}},
        ]
        lines = dynamics_table.late_training_lines({"cp": {"runs": runs}}, 3)
        # Selected epochs 2 and 3 (the first best); last 3 epochs: validation
        # 66.67 and 70, test 76.67 and 70, changes (−10, +10) and (+20, −10).
        self.assertEqual(
            lines[2], "| cp | 2 | 2.5 | 75.00 / 75.00 | 68.33 / 73.33 | 12.50 |")
        self.assertIn("last 3 epochs", lines[0])

    def test_late_training_without_test_history(self):
        runs = [{"history": {"val_accuracy": [0.5, 0.6]}}]
        lines = dynamics_table.late_training_lines({"mlp": {"runs": runs}}, 5)
        self.assertEqual(
            lines[2], "| mlp | 1 | 2.0 | 60.00 / nan | 55.00 / nan | 0.00 |")


class FashionMnistTest(test_case.TestCase, ResultsAssertions):
    def test_run_learns_and_writes_results(self):
        model_dir = self.get_temp_dir()
        flag_values = _flag_values(
            fashion_mnist,
            ["--epochs=3", "--batch_size=32", "--method=gs",
             "--validation_size=64", f"--model_dir={model_dir}"],
        )
        results = fashion_mnist.run(flag_values, _synthetic_splits())

        self.assertEqual(_read_results(model_dir), json.loads(
            json.dumps(results)))
        self.assertResults(results, "gs", [0], epochs=3)
        run = results["runs"][0]
        self.assertGreater(run["test_accuracy"], 0.8)  # chance is 0.1
        self.assertEqual(
            run["test_accuracy"], run["history"]["test_accuracy"][-1]
        )
        self.assertEqual(run["train_steps"], 3 * 8)  # 256 / 32 per epoch
        self.assertLen(run["orthogonality_errors"], 3)
        run_dir = os.path.join(model_dir, "seed_0")
        self.assertTrue(os.listdir(os.path.join(run_dir, "train")))
        self.assertTrue(
            os.path.isfile(os.path.join(run_dir, "checkpoint.weights.h5"))
        )
        model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
        test = fashion_mnist.pipeline(_synthetic_splits()["test"], 32)
        model.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        self.assertAllClose(
            model.evaluate(test, verbose=0)[1], run["test_accuracy"]
        )
        self.assertIn("test accuracy", common.format_results(results))

    def test_official_recipe_run(self):
        model_dir = self.get_temp_dir()
        flag_values = _flag_values(
            fashion_mnist,
            ["--epochs=1", "--batch_size=32", "--max_steps_per_epoch=2",
             "--method=cp", "--validation_size=32", "--recipe=official",
             f"--model_dir={model_dir}"],
        )
        results = fashion_mnist.run(flag_values, _synthetic_splits())
        self.assertEqual(results["recipe"], "official")
        self.assertEqual(_read_results(model_dir)["flags"]["recipe"],
                         "official")
        model = keras.saving.load_model(
            os.path.join(model_dir, "seed_0", "model.keras"))
        opt_layers = [layer for layer in model.layers
                      if isinstance(layer, keras_opt.layers.BaseOPT)]
        self.assertLen(opt_layers, 3)
        for layer in opt_layers:
            self.assertEqual(layer.recipe, "official")
            self.assertFalse(layer.use_gain)
            self.assertIsNone(layer.log_gain)
        default = fashion_mnist.build_model(
            common.get_method(_flag_values(fashion_mnist, ["--method=cp"])))
        for layer in default.layers:
            if isinstance(layer, keras_opt.layers.BaseOPT):
                self.assertEqual(layer.recipe, "default")
                self.assertTrue(layer.use_gain)

    def test_rotation_steps_are_logged(self):
        flag_values = _flag_values(
            fashion_mnist,
            ["--epochs=2", "--batch_size=32", "--max_steps_per_epoch=2",
             "--method=cp", "--validation_size=32", "--rotation_steps"],
        )
        history = fashion_mnist.run(
            flag_values, _synthetic_splits())["runs"][0]["history"]
        names = [key.split("/", 1)[1] for key in history
                 if key.startswith("rotation_step/")]
        self.assertLen(names, 3)
        for name in names:
            steps = history[f"rotation_step/{name}"]
            distances = history[f"rotation_distance/{name}"]
            self.assertLen(steps, 2)
            # From R = I: the first epoch's step is the distance from I,
            # and no distance exceeds the triangle inequality's bound.
            self.assertAllClose(steps[0], distances[0])
            self.assertGreater(steps[0], 0.0)
            self.assertLessEqual(distances[1], steps[0] + steps[1] + 1e-9)
            self.assertLen(history[f"gain/{name}"], 2)

    def test_compare_trains_the_plain_network_too(self):
        flag_values = _flag_values(
            fashion_mnist,
            ["--epochs=1", "--batch_size=32", "--max_steps_per_epoch=2",
             "--method=cp", "--seeds=0,1", "--validation_size=32",
             "--compare"],
        )
        results = fashion_mnist.run(flag_values, _synthetic_splits())

        self.assertResults(results, "cp", [0, 1], epochs=1)
        self.assertResults(results["compare"], common.PLAIN, [0, 1], epochs=1)
        for run in results["runs"] + results["compare"]["runs"]:
            self.assertEqual(run["train_steps"], 2)
        report = common.format_results(results)
        self.assertIn("plain network, same recipe", report)

    def test_mirrored_strategy_fit(self):
        flag_values = _flag_values(
            fashion_mnist,
            ["--epochs=1", "--batch_size=32", "--max_steps_per_epoch=3",
             "--method=ogd", "--validation_size=32", "--strategy=mirrored"],
        )
        self.assertEqual(
            common.training_loop(flag_values, common.get_strategy(flag_values)),
            "fit",
        )
        results = fashion_mnist.run(flag_values, _synthetic_splits())
        self.assertResults(results, "ogd", [0], epochs=1)
        self.assertEqual(results["runs"][0]["train_steps"], 3)

    def test_custom_loop_with_checkpoints(self):
        model_dir = self.get_temp_dir()
        flag_values = _flag_values(
            fashion_mnist,
            ["--epochs=2", "--batch_size=32", "--max_steps_per_epoch=3",
             "--method=gs", "--validation_size=32", "--strategy=mirrored",
             "--training_loop=custom", f"--model_dir={model_dir}"],
        )
        results = fashion_mnist.run(flag_values, _synthetic_splits())
        run = results["runs"][0]
        self.assertEqual(run["epochs_run"], 2)
        self.assertEqual(run["train_steps"], 6)
        self.assertLen(run["history"]["loss"], 2)
        self.assertBetween(run["test_accuracy"], 0.0, 1.0)
        self.assertNotEmpty(
            os.listdir(os.path.join(model_dir, "seed_0", "checkpoints"))
        )
        # Rerun unchanged: it resumes after the last step, training nothing.
        again = fashion_mnist.run(flag_values, _synthetic_splits())
        self.assertEqual(again["runs"][0]["train_steps"], 6)
        self.assertAllClose(
            again["runs"][0]["test_accuracy"], run["test_accuracy"]
        )

    def test_gcn_refuses_a_strategy(self):
        flag_values = _flag_values(gcn, ["--strategy=mirrored"])
        with self.assertRaisesRegex(ValueError, "--strategy=default"):
            gcn.run(flag_values)

    def test_build_model(self):
        model = fashion_mnist.build_model("householder")
        opt_layers = [
            layer for layer in model.layers
            if isinstance(layer, keras_opt.layers.BaseOPT)
        ]
        # d = fan-in: 3·3·1, 3·3·16 and 3·3·32; the classifier is plain.
        self.assertEqual(
            [tuple(layer.basis.shape)[0] for layer in opt_layers],
            [9, 144, 288],
        )
        self.assertEqual(model.output_shape, (None, 10))
        plain = fashion_mnist.build_model(common.PLAIN)
        self.assertFalse(
            any(isinstance(l, keras_opt.layers.BaseOPT) for l in plain.layers)
        )


class MlpTest(test_case.TestCase, ResultsAssertions):
    def test_ogd_mlp(self):
        flag_values = _flag_values(
            mlp,
            ["--epochs=2", "--batch_size=32", "--max_steps_per_epoch=3",
             "--method=ogd", "--validation_size=32"],
        )
        results = mlp.run(flag_values, _synthetic_splits())
        self.assertResults(results, "ogd", [0], epochs=2)
        self.assertEqual(results["runs"][0]["train_steps"], 6)
        model = mlp.build_model("ogd")
        self.assertEqual(
            [tuple(l.basis.shape) for l in model.layers
             if isinstance(l, keras_opt.layers.BaseOPT)],
            [(784, 256), (256, 256)],
        )


class SmallDataTest(test_case.TestCase):
    def test_tunes_evaluates_compares_and_renders(self):
        output = os.path.join(self.get_temp_dir(), "small_data.json")
        flag_values = _flag_values(
            small_data,
            ["--epochs=2", "--batch_size=32", "--max_steps_per_epoch=2",
             "--train_size=96", "--validation_size=64", "--methods=plain,gs",
             "--seeds=0,1", "--tuning_seeds=7", "--learning_rates=0.01,0.1",
             f"--output={output}"],
        )
        results = small_data.run(flag_values, _synthetic_splits())
        with open(output) as f:
            self.assertEqual(json.load(f), json.loads(json.dumps(results)))
        for method in ("plain", "gs"):
            points = results["tuning"][method]["points"]
            self.assertEqual([p["learning_rate"] for p in points], [0.01, 0.1])
            best = max(points, key=lambda p: p["val_accuracy"]["mean"])
            chosen = results["tuning"][method]["chosen"]
            self.assertEqual(chosen["learning_rate"], best["learning_rate"])
            entry = results["evaluation"][method]
            self.assertEqual(entry["seeds"], [0, 1])
            self.assertEqual(entry["learning_rate"], chosen["learning_rate"])
            for epoch in entry["best_epoch"]:
                self.assertBetween(epoch, 1, 2)
        comparison = results["comparison"]["gs"]
        self.assertEqual(comparison["n"], 2)
        values = [results["evaluation"][m]["test_accuracy"]["values"]
                  for m in ("gs", "plain")]
        self.assertAllClose(
            comparison["mean"],
            100 * (np.mean(values[0]) - np.mean(values[1])), atol=1e-9)
        page = "\n".join(results_page.small_data_lines(results))
        self.assertIn("--methods=plain,gs", page)
        self.assertIn(f"| gs | 2 |", page)
        with self.assertRaisesRegex(ValueError, "--methods"):
            small_data.run(_flag_values(small_data, ["--method=gs"]))

    def test_resume_reuses_only_runs_with_the_same_flags(self):
        model_dir = self.get_temp_dir()
        argv = ["--epochs=1", "--batch_size=32", "--max_steps_per_epoch=1",
                "--train_size=64", "--validation_size=64", "--methods=plain",
                "--seeds=0", "--tuning_seeds=7", "--learning_rates=0.1",
                f"--model_dir={model_dir}"]
        first = small_data.run(_flag_values(small_data, argv),
                               _synthetic_splits())
        path = os.path.join(model_dir, "evaluation", "plain", "results.json")
        with open(path) as f:
            stored = json.load(f)
        stored["runs"][0]["test_accuracy"] = -1.0  # a marker, not a result
        with open(path, "w") as f:
            json.dump(stored, f)
        resumed = small_data.run(
            _flag_values(small_data, [*argv, "--verbose=0"]),
            _synthetic_splits())
        self.assertEqual(
            resumed["evaluation"]["plain"]["test_accuracy"]["values"], [-1.0])
        self.assertEqual(resumed["tuning"], first["tuning"])
        tuning_path = os.path.join(
            model_dir, "tuning", "plain", "lr0.1_wd0", "results.json")
        with open(tuning_path) as f:
            stored = json.load(f)
        stored["runs"][0]["test_accuracy"] = -1.0
        with open(tuning_path, "w") as f:
            json.dump(stored, f)
        wider = small_data.run(
            _flag_values(small_data, [*argv, "--learning_rates=0.02,0.1"]),
            _synthetic_splits())
        points = wider["tuning"]["plain"]["points"]
        self.assertEqual([p["learning_rate"] for p in points], [0.02, 0.1])
        self.assertEqual(points[1]["test_accuracy"]["values"], [-1.0])
        self.assertNotEqual(points[0]["test_accuracy"]["values"], [-1.0])
        changed = small_data.run(
            _flag_values(small_data, [*argv, "--epochs=2"]),
            _synthetic_splits())
        self.assertNotEqual(
            changed["evaluation"]["plain"]["test_accuracy"]["values"], [-1.0])
        rerun = small_data.run(
            _flag_values(small_data, [*argv, "--noresume"]),
            _synthetic_splits())
        self.assertNotEqual(
            rerun["evaluation"]["plain"]["test_accuracy"]["values"], [-1.0])


class PlanetoidTest(test_case.TestCase):
    def test_vendored_cora(self):
        graph = planetoid.load_planetoid("cora")
        self.assertEqual(graph["features"].shape, (2708, 1433))
        self.assertEqual(
            [len(graph[s]) for s in ("train", "validation", "test")],
            [140, 500, 1000],
        )
        self.assertEqual(
            np.bincount(graph["labels"][graph["train"]]).tolist(), [20] * 7
        )
        adjacency = graph["adjacency"]
        self.assertAllEqual(adjacency, adjacency.T)
        self.assertEqual(int(np.triu(adjacency, 1).sum()), 5278)
        self.assertEqual(float(np.trace(adjacency)), 0.0)
        normalized = planetoid.normalize_adjacency(adjacency)
        degree = adjacency.sum(axis=1) + 1
        self.assertAllClose(
            normalized[0, 0], 1.0 / degree[0], rtol=1e-6
        )
        # Eigenvalues of D^-1/2 (A + I) D^-1/2 lie in (-1, 1].
        self.assertAllClose(
            np.max(np.abs(np.linalg.eigvalsh(normalized[:300, :300]))) <= 1.0,
            True,
        )

    def test_bad_name_and_missing_files(self):
        with self.assertRaisesRegex(ValueError, "cora"):
            planetoid.load_planetoid("mnist")
        with self.assertRaisesRegex(FileNotFoundError, "ind.citeseer.x"):
            planetoid.load_planetoid("citeseer", self.get_temp_dir())


class GcnTest(test_case.TestCase, ResultsAssertions):
    def test_plain_gcn_learns_on_cora(self):
        model_dir = self.get_temp_dir()
        flag_values = _flag_values(
            gcn, ["--epochs=50", "--method=plain", f"--model_dir={model_dir}"]
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = gcn.run(flag_values)
        # TensorBoard leaves out the graph, which no config can carry.
        self.assertEmpty(
            [w for w in caught if "failed to serialize" in str(w.message)]
        )
        self.assertResults(_read_results(model_dir), "plain", [0], epochs=50)
        run = results["runs"][0]
        self.assertEqual(run["train_steps"], 50)  # one full-graph step each
        # "Learns": well above always answering the validation split's
        # largest class (31.6 % of its 500 nodes; seed 0 reaches 55 % here).
        graph = planetoid.load_planetoid("cora")
        counts = np.bincount(graph["labels"][graph["validation"]])
        majority = counts.max() / counts.sum()
        self.assertAllClose(majority, 0.316)
        self.assertGreater(run["val_accuracy"], majority + 0.15)
        self.assertGreater(run["test_accuracy"], majority + 0.15)

    def test_opt_gcn_keeps_rotations_orthogonal(self):
        flag_values = _flag_values(gcn, ["--epochs=2", "--method=gs"])
        results = gcn.run(flag_values)
        self.assertResults(results, "gs", [0], epochs=2)
        self.assertLen(results["runs"][0]["orthogonality_errors"], 2)


class ReproduceTest(test_case.TestCase):
    def test_tiny_grid_writes_page_and_plots(self):
        output_dir = self.get_temp_dir()
        grid = {
            "seeds": [0],
            "runs": [("gcn", "plain", "plain", ["--epochs=1"])],
        }
        path = reproduce.reproduce(grid, output_dir, self.get_temp_dir())
        with open(path) as f:
            page = f.read()
        self.assertIn("| plain | 1 |", page)
        self.assertIn("`python -m examples.gcn --method=plain", page)
        for name in ("gcn_accuracy.png", "gcn_plain_dynamics.png"):
            with open(os.path.join(output_dir, name), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    absltest.main()
