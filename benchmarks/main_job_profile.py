"""Where the main job's training time goes: one variant at a time, interleaved.

Usage:

    .venv/bin/python benchmarks/main_job_profile.py [--epochs 3] [--repeats 3]

Every variant trains the main-job network (`examples.fashion_mnist`:
`build_model("gs")`, batch 128, `StiefelSGD` 0.1 / momentum 0.9, the
energy and orthogonality monitors, validation and the per-epoch test
evaluation unless the variant drops them) for `--epochs` epochs in a fresh
subprocess. The variants run round-robin, `--repeats` rounds, so that the
load of a shared machine falls on all of them alike; the table gives
medians over the rounds. Per run it measures, with a callback:

- the first epoch (it includes tracing the step) and the later epochs
  (median), wall-clock seconds;
- the cores busy during the later epochs (process CPU time / wall time)
  and their CPU seconds, which a loaded machine distorts less than wall
  time (other processes take cores, not instructions);
- the seconds per epoch spent in the test evaluation (`TestMetrics`).

Variants (`--variants`, comma-separated):

- `tfds`: the input pipeline before this script was written: TFDS records
  decoded (PNG) every epoch, validation = `skip(55_000)` of the train split;
- `memory`: the splits decoded once into numpy arrays
  (`examples.fashion_mnist.load_splits`, the default now);
- `memory_no_test`: `memory` without the per-epoch test evaluation;
- `spe<N>`: `memory` with `steps_per_execution=N` in `compile`;
- `jit`: `memory` with `jit_compile=True` (XLA on the CPU);
- `threads<intra>x<inter>`: `memory` with `tf.config.threading` intra-op
  and inter-op pool sizes set (the defaults are the core count).

`--pipeline_only` times the input pipelines alone instead (`tfds` against
`memory`, CPU and wall seconds per epoch of train + validation batches).

`--interleaved` times the parts of an epoch in one process instead,
round-robin: a training epoch with `steps_per_execution` 1, 8 and 32, the
validation pass, the test pass and the monitors.

`--synthetic` replaces Fashion-MNIST by random data of its shape (for a
smoke test without the data; the timings then mean nothing).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

VARIANTS = ("tfds", "memory", "memory_no_test", "spe8", "jit",
            "threads1x1", "threads2x1")


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _synthetic(size):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)

    def make(n):
        return tf.data.Dataset.from_tensor_slices((
            rng.integers(0, 256, (n, 28, 28, 1)).astype("uint8"),
            rng.integers(0, 10, n).astype("int64"),
        ))

    return {"train": make(size), "test": make(max(size // 6, 1))}


def _argv(synthetic_size):
    """The main job's flags (synthetic data: an eighth for validation)."""
    argv = ["profile", "--verbose=0", "--method=gs"]
    if synthetic_size:
        argv.append(f"--validation_size={synthetic_size // 8}")
    return argv


def _splits(variant, flags_obj, synthetic_size):
    from examples import datasets
    from examples import fashion_mnist

    raw = (_synthetic(synthetic_size) if synthetic_size
           else datasets.load_fashion_mnist(flags_obj.data_dir))
    if variant != "tfds":
        return fashion_mnist.load_splits(flags_obj, raw)
    count = int(raw["train"].cardinality())
    size = flags_obj.validation_size
    return {"train": raw["train"].take(count - size),
            "validation": raw["train"].skip(count - size),
            "test": raw["test"]}


def epoch_clock():
    """A Keras callback that records (wall, CPU) seconds of every epoch."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = (time.perf_counter(), _cpu_seconds())

        def on_epoch_end(self, epoch, logs=None):
            wall, cpu = self._start
            self.epochs.append((time.perf_counter() - wall,
                                _cpu_seconds() - cpu))

    return EpochClock()


def child(variant, epochs, synthetic_size, max_steps):
    """Trains one variant; prints a JSON line of its timings."""
    import tensorflow as tf

    if variant.startswith("threads"):
        intra, inter = (int(n) for n in variant[len("threads"):].split("x"))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    import keras
    from absl import flags

    from examples import common
    from examples import fashion_mnist

    flag_values = flags.FlagValues()
    fashion_mnist.define_flags(flag_values)
    flag_values(_argv(synthetic_size))
    splits = _splits(variant, flag_values, synthetic_size)
    keras.utils.set_random_seed(0)
    model = fashion_mnist.build_model("gs")
    model.compile(
        optimizer=common.build_optimizer(flag_values),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=(int(variant[3:]) if variant.startswith("spe")
                             else 1),
        jit_compile=variant == "jit" or "auto",
    )
    test_metrics = None
    if variant != "memory_no_test":
        test_metrics = common.TestMetrics(
            x=fashion_mnist.pipeline(splits["test"], 128))
    clock = epoch_clock()
    model.fit(
        fashion_mnist.pipeline(splits["train"], 128, shuffle_seed=0,
                               max_batches=max_steps),
        validation_data=fashion_mnist.pipeline(splits["validation"], 128),
        epochs=epochs,
        verbose=0,
        callbacks=[clock] + common.make_callbacks(
            flag_values, None, test_metrics=test_metrics),
    )
    later = clock.epochs[1:] or clock.epochs
    print(json.dumps({
        "variant": variant,
        "first_epoch_s": clock.epochs[0][0],
        "epoch_s": statistics.median(wall for wall, _ in later),
        "cores": statistics.median(cpu / wall for wall, cpu in later),
        "cpu_s": statistics.median(cpu for _, cpu in later),
        "test_eval_s": (test_metrics.seconds / epochs if test_metrics
                        else 0.0),
        "steps": int(model.optimizer.iterations.numpy()),
    }))


def pipeline_only(args):
    """CPU and wall seconds to read one epoch of train + validation batches.

    No model: the input pipeline alone, `tfds` and `memory` alternating in
    one process, `--repeats` rounds. CPU seconds hardly depend on the load.
    """
    from absl import flags

    from examples import fashion_mnist

    flag_values = flags.FlagValues()
    fashion_mnist.define_flags(flag_values)
    flag_values(_argv(args.synthetic))
    splits = {v: _splits(v, flag_values, args.synthetic)
              for v in ("tfds", "memory")}
    print("| pipeline | round | wall (s) | CPU (s) |")
    print("|---|---|---|---|")
    for repeat in range(args.repeats):
        for variant, data in splits.items():
            wall, cpu = time.perf_counter(), _cpu_seconds()
            for name in ("train", "validation"):
                for _ in fashion_mnist.pipeline(data[name], 128, shuffle_seed=0
                                                if name == "train" else None):
                    pass
            print(f"| {variant} | {repeat} | {time.perf_counter() - wall:.2f} "
                  f"| {_cpu_seconds() - cpu:.2f} |", flush=True)


def _timed(function):
    wall, cpu = time.perf_counter(), _cpu_seconds()
    function()
    return time.perf_counter() - wall, _cpu_seconds() - cpu


def interleaved(args):
    """Epoch parts timed in one process, round-robin (`--interleaved`).

    Three copies of the network compiled with `steps_per_execution` 1, 8
    and 32 train one epoch each per round (no validation, no callbacks);
    then the first copy times a validation pass, a test pass and the two
    monitors. One process, so the load falls on every part alike.
    """
    import keras
    from absl import flags

    from examples import common
    from examples import fashion_mnist

    flag_values = flags.FlagValues()
    fashion_mnist.define_flags(flag_values)
    flag_values(_argv(args.synthetic))
    splits = _splits("memory", flag_values, args.synthetic)
    data = {name: fashion_mnist.pipeline(splits[name], 128)
            for name in ("validation", "test")}
    models = {}
    for steps in (1, 8, 32):
        keras.utils.set_random_seed(0)
        models[f"train epoch, steps_per_execution={steps}"] = model = (
            fashion_mnist.build_model("gs"))
        model.compile(optimizer=common.build_optimizer(flag_values),
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True),
                      metrics=["accuracy"], steps_per_execution=steps)
    first = next(iter(models.values()))
    monitors = common.make_callbacks(flag_values, None)
    for callback in monitors:
        callback.set_model(first)
    parts = {name: (lambda m=model, r=[0]: m.fit(
        fashion_mnist.pipeline(splits["train"], 128, shuffle_seed=r[0],
                               max_batches=args.max_steps), verbose=0))
        for name, model in models.items()}
    parts.update({
        f"{name} pass": (lambda d=dataset: first.evaluate(d, verbose=0))
        for name, dataset in data.items()})
    parts["energy + orthogonality monitors"] = lambda: [
        callback.on_epoch_end(0, {}) for callback in monitors]
    times = {name: [] for name in parts}
    for _ in range(args.repeats + 1):  # the first round traces: dropped
        for name, part in parts.items():
            times[name].append(_timed(part))
    print("| part (median of rounds 2+) | wall (s) | CPU (s) | cores busy |")
    print("|---|---|---|---|")
    for name, values in times.items():
        wall = statistics.median(w for w, _ in values[1:])
        cpu = statistics.median(c for _, c in values[1:])
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / wall:.2f} |")


def _run_child(variant, args):
    command = [sys.executable, os.path.abspath(__file__), "--child", variant,
               "--epochs", str(args.epochs),
               "--max_steps", str(args.max_steps)]
    if args.synthetic:
        command += ["--synthetic", str(args.synthetic)]
    output = subprocess.run(command, check=True, capture_output=True,
                            text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max_steps", type=int, default=0,
                        help="Batches per epoch (0: all).")
    parser.add_argument("--synthetic", type=int, default=0,
                        help="Random training images instead of the data.")
    parser.add_argument("--interleaved", action="store_true",
                        help="Time the parts of an epoch in one process.")
    parser.add_argument("--pipeline_only", action="store_true",
                        help="Time the input pipelines alone (no model).")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline_only:
        pipeline_only(args)
        return
    if args.interleaved:
        interleaved(args)
        return
    if args.child:
        child(args.child, args.epochs, args.synthetic, args.max_steps)
        return
    variants = args.variants.split(",")
    print(f"load average before: {os.getloadavg()}", flush=True)
    rounds = {variant: [] for variant in variants}
    for _ in range(args.repeats):
        for variant in variants:
            rounds[variant].append(_run_child(variant, args))
    print(f"load average after: {os.getloadavg()}")
    print("| variant | first epoch (s) | later epoch (s) | ratio to memory "
          "| cores busy | CPU s per later epoch | CPU ratio to memory "
          "| test eval per epoch (s) | train steps |")
    print("|---|---|---|---|---|---|---|---|---|")
    medians = {
        variant: {key: statistics.median(run[key] for run in runs)
                  for key in ("first_epoch_s", "epoch_s", "cores", "cpu_s",
                              "test_eval_s", "steps")}
        for variant, runs in rounds.items()
    }
    base = medians.get("memory", next(iter(medians.values())))
    for variant, m in medians.items():
        print(f"| {variant} | {m['first_epoch_s']:.3f} | {m['epoch_s']:.3f} "
              f"| {m['epoch_s'] / base['epoch_s']:.2f} | {m['cores']:.2f} "
              f"| {m['cpu_s']:.3f} | {m['cpu_s'] / base['cpu_s']:.2f} "
              f"| {m['test_eval_s']:.3f} | {m['steps']:.0f} |")


if __name__ == "__main__":
    main()
