"""Distributed and fault-tolerant training with `tf.distribute`.

This module needs TensorFlow and is not imported by `import keras_opt`; use
`from keras_opt import distribute`.

Example, the same script on every worker of a `TF_CONFIG` cluster:

```python
from keras_opt import distribute

strategy = distribute.get_strategy("multi_worker")
with strategy.scope():
    model = keras.Sequential([
        keras.Input((784,)),
        keras_opt.layers.OPTDense(256, "relu", orthogonalizer="ogd"),
        keras.layers.Dense(10),
    ])
    model.compile(
        optimizer=keras_opt.optimizers.StiefelSGD(learning_rate=0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
def dataset_fn(epoch):
    order = np.random.default_rng(epoch).permutation(len(x))
    return tf.data.Dataset.from_tensor_slices(
        (x[order], y[order])
    ).batch(256, drop_remainder=True)

history = distribute.train(
    model,
    dataset_fn,
    epochs=10,
    checkpoint_dir="/shared/ckpt",
    save_every=50,
    callbacks=[keras_opt.callbacks.OrthogonalityMonitor()],
)
```

Which training path each strategy takes (`training_path`):

- `"default"`, `"mirrored"`, `"tpu"`: `model.fit`, or `train`.
- `"multi_worker"`: `train`, a custom loop, because Keras 3's `fit` under
  `MultiWorkerMirroredStrategy` fails on TensorFlow 2.21
  (keras-team/keras#20585).

**The step.** `train` runs `model.optimizer` on `model.compute_loss` (the
compiled loss plus the layers' regularization losses) with `strategy.run`
on batches from `strategy.experimental_distribute_dataset`. Keras scales
each replica's mean loss by `1 / num_replicas_in_sync` and the optimizer
sums the replicas' gradients, so each step equals a single-process step on
the same global batch, as `tf.nn.compute_average_loss` would give. It works
with `keras_opt.optimizers.StiefelSGD` / `StiefelAdam`.

**Callbacks** run as in `fit`, through a `keras.callbacks.CallbackList`
with a `History`: the monitors of `keras_opt.callbacks`, `SubspaceEpisodes`
and your own callbacks work on every strategy's path. The batch logs hold
the epoch's running mean `"loss"`, the epoch logs its mean; a callback that
sets `model.stop_training` ends training after the current step. Under
`MultiWorkerMirroredStrategy` every worker runs the callbacks, so give
callbacks that write files (TensorBoard, CSVLogger) a directory per worker,
or run them on the chief only.

**Fault tolerance.** With a `checkpoint_dir`, the model, the optimizer
(slots and `iterations`) and the data position (epoch, step in the epoch,
the epoch's summed loss) are saved every `save_every` steps and at the end
of every epoch with `tf.train.CheckpointManager`, after the callbacks of
that step or epoch have run, by the chief worker into `checkpoint_dir` (the
other workers write to temporary directories that they delete, as
`tf.distribute` requires). A restarted run resumes from the last
checkpoint: it rebuilds the epoch's dataset, skips the batches already
consumed, and ends with the weights of an uninterrupted run, each step done
once (S-OPT's episodes included: `SubspaceEpisodes` reads its state from
the restored variables). The dataset order must therefore be a function of
the epoch: pass a callable `epoch -> dataset` that shuffles with a seed
derived from the epoch, e.g. a `np.random.default_rng(epoch)` permutation
(`Dataset.shuffle(seed=epoch)` also depends on TensorFlow's global seed, so
it is reproducible only if that is set the same way).
"""

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def get_strategy(name="default", num_workers=None, tpu_address=None):
    """Returns a `tf.distribute.Strategy` by name, the Model Garden way.

    Example:

    ```python
    strategy = keras_opt.distribute.get_strategy(args.strategy)
    with strategy.scope():
        model = make_model()
        model.compile(...)
    if keras_opt.distribute.training_path(strategy) == "fit":
        model.fit(dataset, epochs=10)
    else:
        keras_opt.distribute.train(model, dataset, epochs=10)
    ```

    Args:
        name: One of `"default"` (the current strategy, one device),
            `"mirrored"` (`MirroredStrategy` over the local GPUs, or the CPU),
            `"multi_worker"` (`MultiWorkerMirroredStrategy`; the cluster and
            this worker's index come from the `TF_CONFIG` environment
            variable) or `"tpu"` (`TPUStrategy`).
        num_workers: For `"multi_worker"`, the expected number of workers; a
            `TF_CONFIG` with another number raises. `None` accepts any.
        tpu_address: For `"tpu"`, the TPU name or `grpc://` address given to
            `tf.distribute.cluster_resolver.TPUClusterResolver`; `None` for a
            local TPU VM.

    Returns:
        A `tf.distribute.Strategy`. Create the model and its optimizer under
        its `scope()`.
    """
    if name not in STRATEGIES:
        raise ValueError(
            "Invalid value for argument `name`. Expected one of "
            f"{list(STRATEGIES)}. Received: name={name!r}"
        )
    if num_workers is not None and name != "multi_worker":
        raise ValueError(
            "Argument `num_workers` only applies to name='multi_worker'. "
            f"Received: name={name!r}, num_workers={num_workers!r}"
        )
    if tpu_address is not None and name != "tpu":
        raise ValueError(
            "Argument `tpu_address` only applies to name='tpu'. "
            f"Received: name={name!r}, tpu_address={tpu_address!r}"
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        _check_tf_config(num_workers)
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu_address
    )
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def training_path(strategy):
    """Returns `"fit"` or `"custom_loop"`: how to train under `strategy`.

    `"custom_loop"` (use `train`) for `MultiWorkerMirroredStrategy`, whose
    Keras 3 `fit` fails on TensorFlow 2.21; `"fit"` for any other strategy,
    where `train` works as well.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "custom_loop"
    return "fit"


def train(
    model,
    dataset,
    epochs,
    steps_per_epoch=None,
    checkpoint_dir=None,
    save_every=None,
    max_to_keep=1,
    verbose=0,
    callbacks=None,
):
    """Trains a compiled model with a custom loop under its strategy.

    Each step equals a single-process step on the same global batch, under
    any strategy; `callbacks` run as in `fit`; with a `checkpoint_dir` a
    restarted run resumes exactly where the last one saved. The module
    docstring explains each of these.

    Args:
        model: A built, compiled Keras model, created with its optimizer
            under the strategy's `scope()`.
        dataset: A `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches of the *global* batch size, the same every epoch, or a
            callable `epoch -> tf.data.Dataset`. With several replicas,
            batch with `drop_remainder=True`.
        epochs: Epochs to train, counted from 0 (a resumed run only runs
            the epochs left).
        steps_per_epoch: Batches per epoch. Defaults to the dataset's
            cardinality, which must then be finite and known.
        checkpoint_dir: Directory of the checkpoints, shared by all
            workers. `None` saves nothing.
        save_every: Also save every this many steps. `None` saves at epoch
            ends only.
        max_to_keep: Checkpoints kept by the `CheckpointManager`.
        verbose: 0 (silent), 1 (progress bar) or 2 (a line per epoch), on
            the chief only.
        callbacks: A list of `keras.callbacks.Callback`, or `None`.

    Returns:
        The `History` dict of the epochs run by this call: `"loss"`, the
        mean training loss of each epoch, and what the callbacks logged.
    """
    strategy = _check_model(model)
    _check_positive_int("epochs", epochs)
    for name, value in [("steps_per_epoch", steps_per_epoch),
                        ("save_every", save_every)]:
        if value is not None:
            _check_positive_int(name, value)
    dataset_fn = dataset if callable(dataset) else lambda epoch: dataset
    steps_per_epoch = _check_dataset(dataset_fn(0), steps_per_epoch, strategy)
    state = _LoopState(model, checkpoint_dir, max_to_keep)
    loop = _Loop(model, dataset_fn, steps_per_epoch, save_every, state)
    history = loop.run(epochs, callbacks, verbose)
    return {"loss": [], **history.history}


def _check_model(model):
    """Returns the strategy of `model`, once it is known to be trainable."""
    if getattr(model, "optimizer", None) is None or not getattr(
        model, "compiled", False
    ):
        raise ValueError(
            "The model must be compiled with an optimizer and a loss before "
            "calling `train`. Received: a model that is not compiled."
        )
    if not model.built:
        raise ValueError(
            "The model must be built before calling `train` (give it an "
            "`Input` or call it once). Received: an unbuilt model."
        )
    return model.distribute_strategy


def _check_dataset(first, steps_per_epoch, strategy):
    """Returns `steps_per_epoch`, or the cardinality of `first`."""
    if not isinstance(first, tf.data.Dataset):
        raise TypeError(
            "Expected `dataset` to be a `tf.data.Dataset` or a callable "
            f"returning one. Received: {type(first).__name__}"
        )
    if steps_per_epoch is None:
        steps_per_epoch = int(first.cardinality())
        if steps_per_epoch <= 0:
            raise ValueError(
                "The dataset's cardinality is unknown or infinite: pass "
                f"`steps_per_epoch`. Received: cardinality={steps_per_epoch}"
            )
    if strategy.num_replicas_in_sync > 1:
        batch_sizes = {
            spec.shape[0] for spec in tf.nest.flatten(first.element_spec)
        }
        if None in batch_sizes:
            raise ValueError(
                "With several replicas every global batch must have the "
                "same size, so that each step equals a single-process step: "
                "batch the dataset with `drop_remainder=True`. Received: "
                f"element_spec={first.element_spec}"
            )
    return steps_per_epoch


class _LoopState:
    """Where the loop is, saved and restored with the model and optimizer.

    `epoch`, `step` (in the epoch) and `loss_sum` (of the epoch's steps so
    far) are variables of a `tf.train.Checkpoint` that also holds the model
    and the optimizer; with a `checkpoint_dir` the latest checkpoint there
    is restored when the state is made.
    """

    def __init__(self, model, checkpoint_dir, max_to_keep):
        self._strategy = model.distribute_strategy
        self._optimizer = model.optimizer
        with self._strategy.scope():
            if not self._optimizer.built:
                self._optimizer.build(model.trainable_variables)
            self.epoch = tf.Variable(0, dtype="int64", trainable=False)
            self.step = tf.Variable(0, dtype="int64", trainable=False)
            self.loss_sum = tf.Variable(0.0, dtype="float64", trainable=False)
        self._manager = None
        if checkpoint_dir is None:
            return
        checkpoint = tf.train.Checkpoint(
            model=model,
            optimizer=self._optimizer,
            epoch=self.epoch,
            step_in_epoch=self.step,
            epoch_loss_sum=self.loss_sum,
        )
        latest = tf.train.latest_checkpoint(checkpoint_dir)
        if latest is not None:
            checkpoint.restore(latest).assert_existing_objects_matched()
        self._manager = tf.train.CheckpointManager(
            checkpoint,
            _write_dir(self._strategy, checkpoint_dir),
            max_to_keep=max_to_keep,
        )

    def mean_loss(self):
        return float(self.loss_sum.numpy()) / max(int(self.step.numpy()), 1)

    def next_epoch(self):
        self.epoch.assign_add(1)
        self.step.assign(0)
        self.loss_sum.assign(0.0)

    def save(self):
        if self._manager is None:
            return
        self._manager.save(checkpoint_number=self._optimizer.iterations)
        if not self._strategy.extended.should_checkpoint:
            tf.io.gfile.rmtree(self._manager.directory)


class _Loop:
    """The epochs and steps of `train`, with the callbacks of `fit`."""

    def __init__(self, model, dataset_fn, steps_per_epoch, save_every, state):
        self.model = model
        self.dataset_fn = dataset_fn
        self.steps_per_epoch = steps_per_epoch
        self.save_every = save_every
        self.state = state
        self.train_step = _make_train_step(model)

    def run(self, epochs, callbacks, verbose):
        """Trains until `epochs`; returns the `History`."""
        callbacks = keras.callbacks.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=bool(verbose)
            and self.model.distribute_strategy.extended.should_checkpoint,
            model=self.model,
            verbose=verbose,
            epochs=epochs,
            steps=self.steps_per_epoch,
        )
        self.model.stop_training = False
        callbacks.on_train_begin()
        logs = None
        while int(self.state.epoch.numpy()) < epochs:
            epoch = int(self.state.epoch.numpy())
            callbacks.on_epoch_begin(epoch)
            finished = self._run_epoch(callbacks)
            logs = {"loss": self.state.mean_loss()}
            callbacks.on_epoch_end(epoch, logs)
            if finished:
                self.state.next_epoch()
                self.state.save()
            if self.model.stop_training:
                break
        callbacks.on_train_end(logs)
        return self.model.history

    def _run_epoch(self, callbacks):
        """Runs the epoch's steps left; False if a callback stopped it."""
        state = self.state
        start = int(state.step.numpy())
        data = self.dataset_fn(int(state.epoch.numpy()))
        if start:
            data = data.skip(start)
        strategy = self.model.distribute_strategy
        iterator = iter(strategy.experimental_distribute_dataset(data))
        for step in range(start, self.steps_per_epoch):
            callbacks.on_train_batch_begin(step)
            loss = self.train_step(next(iterator))
            state.loss_sum.assign_add(tf.cast(loss, "float64"))
            state.step.assign_add(1)
            callbacks.on_train_batch_end(step, {"loss": state.mean_loss()})
            if self.model.stop_training:
                return False
            done = step + 1
            if (
                self.save_every is not None
                and done % self.save_every == 0
                and done < self.steps_per_epoch
            ):
                state.save()
        return True


def _make_train_step(model):
    """One distributed training step: `data -> summed replica losses`."""
    strategy = model.distribute_strategy
    optimizer = model.optimizer

    def replica_step(data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                training=True,
            )
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    @tf.function
    def train_step(data):
        losses = strategy.run(replica_step, args=(data,))
        return strategy.reduce("SUM", losses, axis=None)

    return train_step


def _write_dir(strategy, checkpoint_dir):
    if strategy.extended.should_checkpoint:
        return checkpoint_dir
    task_id = strategy.cluster_resolver.task_id
    return os.path.join(checkpoint_dir, f"workertemp_{task_id}")


def _check_tf_config(num_workers):
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "name='multi_worker' reads the cluster from the `TF_CONFIG` "
            "environment variable, which is not set. Expected e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host0:port", '
            '"host1:port"]}, "task": {"type": "worker", "index": 0}}\' on '
            "every worker, with its own index."
        )
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        task_type, index = task["type"], task["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            "Invalid `TF_CONFIG`. Expected JSON with `cluster.worker` (a list "
            "of host:port) and `task` (`type` and `index`). "
            f"Received: TF_CONFIG={raw!r} ({error!r})"
        ) from None
    if task_type not in ("worker", "chief"):
        raise ValueError(
            "Invalid `TF_CONFIG`: MultiWorkerMirroredStrategy runs on "
            "'worker' (and 'chief') tasks. Received: "
            f"task type={task_type!r}"
        )
    size = len(workers) + len(config["cluster"].get("chief", []))
    if num_workers is not None and size != num_workers:
        raise ValueError(
            f"`TF_CONFIG` lists {size} workers but num_workers={num_workers}. "
            f"Received: TF_CONFIG={raw!r}"
        )


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a positive int. "
            f"Received: {name}={value!r}"
        )
