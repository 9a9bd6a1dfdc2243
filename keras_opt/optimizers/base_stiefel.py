"""Shared machinery of the Stiefel optimizers: roles, slots, the step."""

import functools
import numbers
import warnings

import keras
from keras import ops

from keras_opt import _control
from keras_opt import stiefel
from keras_opt import variable_tags
from keras_opt._validation import check_number

RETRACTIONS = ("cayley", "qr")
# Slots of a Stiefel variable that a fresh build does not set to zero, by
# role: the drift estimate starts "unknown".
_INITIAL_SLOT_VALUES = {"drift": 1.0}

base_stiefel_keyword_args = """rotation_learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule` instance, or
            a callable that takes no arguments, used for the Stiefel
            variables instead of `learning_rate`. Defaults to `None`:
            `default_rotation_learning_rate_factor` × `learning_rate`,
            following its schedule (0.2 for `StiefelSGD`, the official
            OGD ratio 0.02 / 0.1; 10 for `StiefelAdam`, chosen on Cora's
            validation split). Measured
            on Cora and Fashion-MNIST (`docs/results.md`); no rule found
            makes the best rate independent of the optimizer family.
        retraction: How a Riemannian step returns to the manifold.
            `"cayley"` (the default, OPT's OGD): the Cayley transform by
            two fixed-point iterations. `"qr"`: the QR retraction with a
            non-negative diagonal of R.
        drift_tolerance: Float > 0. The Cayley iterations drift off the
            manifold a little every step; the optimizer accumulates an
            estimate of `max |XᵀX − I|` (the exact leading truncation term
            plus a rounding allowance of 1e-8 per step) and
            re-orthonormalizes X by QR with a non-negative diagonal of R,
            projecting the momentum onto the new tangent space, once the
            estimate passes this tolerance. The estimate starts at 1, so X
            is also re-orthonormalized at the first step. Defaults to `2e-6`
            (with the float32 QR error this keeps `max |XᵀX − I| <= 1e-5`).
            Ignored by `retraction="qr"`.
        reorthonormalize_every: `None` or an integer >= 1. If set, X is also
            re-orthonormalized every that many steps. Defaults to `None`.
        use_group_form: Boolean. Whether a square Stiefel variable X (the
            rotation of an OPT layer) takes its step in the orthogonal-group
            form: with `A = skew(XᵀM)`, the generator is `W = X A Xᵀ`, the
            tangent `X A` and the Cayley step
            `X + X A (αI + (α²/2) A + (α³/4) A²)`. That is four `d×d`
            products instead of six, equal to the official formula while
            `XᵀX = I` and within `O(max |XᵀX − I|)` of it as X drifts
            before re-orthonormalization (with `retraction="qr"`, only the
            tangent is computed this way). `False` computes the official
            formula. Tall variables always use the official formula.
            Defaults to `True`."""

base_optimizer_keyword_args = """weight_decay: Float. If set,
            decoupled weight decay is applied to the variables that are
            not Stiefel variables.
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
        ema_overwrite_frequency, loss_scale_factor,
        gradient_accumulation_steps, name: As in
            `keras.optimizers.Optimizer`. Gradient clipping applies to all
            variables; `use_ema` averages Stiefel variables off the
            manifold, so re-orthonormalize them if you use it."""


def with_keyword_args(cls):
    """Fills the `{{...}}` placeholders of a Stiefel optimizer's docstring."""
    cls.__doc__ = cls.__doc__.replace(
        "{{base_stiefel_keyword_args}}", base_stiefel_keyword_args
    ).replace("{{base_optimizer_keyword_args}}", base_optimizer_keyword_args)
    return cls


class StiefelOptimizerMixin:
    """Adds Stiefel variables to a Keras optimizer; not part of the API.

    Mixed in before a stock Keras optimizer (`class StiefelSGD(
    StiefelOptimizerMixin, keras.optimizers.SGD)`). The roles are resolved
    in `build()` from the tags of `keras_opt.variable_tags` (and
    `add_stiefel_variables()`), by variable index. Every other variable is
    left to the stock optimizer: its slots and `update_step` are Keras's.
    A Stiefel variable gets none of the stock slots, only its own: a
    momentum (`_stiefel_momentums`), the drift estimate of the Cayley
    retraction (`_stiefel_drifts`) and what `_add_stiefel_slots` of the
    subclass adds. A Stiefel step whose gradient, or whose result, has a
    non-finite entry is skipped, in the graph: nothing non-finite is ever
    written into the variable or its slots.

    Subclasses call `_init_stiefel()` after `super().__init__()` and
    implement `_stiefel_direction(x, gradient, state)`. With
    `damps_tagged_steps`, variables tagged by
    `keras_opt.variable_tags.mark_damped_step` get the stock update at a
    learning rate that shrinks with the steps (`_damped_rate`). With
    `steps_tagged_rotations`, variables tagged by
    `keras_opt.variable_tags.mark_rotation_step` get the subclass's
    `_rotation_step`, at the tag's scale of the rotation learning rate.
    """

    damps_tagged_steps = False
    steps_tagged_rotations = False

    def _init_stiefel(
        self,
        rotation_learning_rate,
        retraction,
        drift_tolerance,
        reorthonormalize_every,
        use_group_form=True,
    ):
        check_learning_rate(
            "rotation_learning_rate", rotation_learning_rate, allow_none=True
        )
        if retraction not in RETRACTIONS:
            raise ValueError(
                "Invalid value for argument `retraction`. Expected one of "
                f"{list(RETRACTIONS)}. Received: retraction={retraction!r}"
            )
        self.retraction = retraction
        self.drift_tolerance = check_number(
            "drift_tolerance", drift_tolerance, low=0.0, low_inclusive=False
        )
        self.reorthonormalize_every = check_number(
            "reorthonormalize_every",
            reorthonormalize_every,
            "int",
            low=1,
            allow_none=True,
        )
        if not isinstance(use_group_form, bool):
            raise TypeError(
                "Invalid type for argument `use_group_form`. Expected a "
                f"boolean. Received: use_group_form={use_group_form!r} of "
                f"type {type(use_group_form).__name__}"
            )
        self.use_group_form = use_group_form
        self._extra_stiefel_keys = []
        self._stiefel_roles = ()
        if isinstance(rotation_learning_rate, (int, float)):
            rotation_learning_rate = self.add_variable(
                shape=(),
                initializer=keras.initializers.Constant(
                    float(rotation_learning_rate)
                ),
                dtype=keras.config.floatx(),
                aggregation="only_first_replica",
                name="rotation_learning_rate",
            )
        self._rotation_learning_rate = rotation_learning_rate

    def add_stiefel_variables(self, variables):
        """Marks more variables as Stiefel variables of this optimizer.

        Variables made by keras_opt layers are tagged where they are made;
        use this for Stiefel variables made elsewhere. It must be called
        before the optimizer is built (before the first training step).

        Args:
            variables: A list of 2-D `keras.Variable`s with at least as many
                rows as columns, each with orthonormal columns, or 3-D stacks
                `(k, n, p)` of such matrices (a block layer's rotations).
                A stack takes one step for all its matrices, batched.
        """
        if self.built:
            raise ValueError(
                "`add_stiefel_variables()` can only be called before the "
                "optimizer is built. Call it before `fit()` or the first "
                "`apply()`, or create a new optimizer."
            )
        for variable in variables:
            self._extra_stiefel_keys.append(self._var_key(variable))

    @property
    def rotation_learning_rate(self):
        """The current learning rate of the Stiefel variables."""
        return self._get_rotation_learning_rate()

    @rotation_learning_rate.setter
    def rotation_learning_rate(self, value):
        if not isinstance(self._rotation_learning_rate, keras.Variable):
            raise TypeError(
                "`rotation_learning_rate` can only be set when the optimizer "
                "was created with a float `rotation_learning_rate`. Received: "
                f"rotation_learning_rate={self._rotation_learning_rate!r}"
            )
        self._rotation_learning_rate.assign(value)

    def build(self, variables):
        if self.built:
            return
        extra = set(self._extra_stiefel_keys)
        roles = []
        for variable in variables:
            role = variable_tags.is_stiefel_variable(variable) or (
                self._var_key(variable) in extra
            )
            if role:
                _check_stiefel_variable(variable)
                variable_tags.mark_handled(variable)
            roles.append(role)
        self._stiefel_roles = tuple(roles)
        self._damped_roles = tuple(
            self.damps_tagged_steps and variable_tags.is_damped_step(v)
            for v in variables
        )
        self._rotation_step_scales = tuple(
            variable_tags.rotation_step_scale(v)
            if self.steps_tagged_rotations else None
            for v in variables
        )
        self._stiefel_momentums = [None] * len(variables)
        self._stiefel_drifts = [None] * len(variables)
        super().build(variables)
        for index, variable in enumerate(variables):
            if roles[index] and self._stiefel_momentums[index] is None:
                self._add_stiefel_slots(variable, index)

    def add_optimizer_variables(
        self, trainable_variables, name, initializer="zeros"
    ):
        # The stock optimizer's `build()` makes its slots here, after
        # `Optimizer.build()` (which makes the EMA averages of all variables)
        # has set `self.built`. A Stiefel variable gets `None` instead of the
        # stock slots (no d×d Adam moments for a rotation) and its own slots,
        # made in its place so that the order of the optimizer variables,
        # which `.keras` files and checkpoints rely on, is that of version
        # 0.1 (except for `amsgrad=True`).
        if not self.built or not any(self._stiefel_roles):
            return super().add_optimizer_variables(
                trainable_variables, name, initializer
            )
        names = [name] if isinstance(name, str) else list(name)
        slots = tuple([] for _ in names)
        for variable in trainable_variables:
            index = self._get_variable_index(variable)
            if self._stiefel_roles[index]:
                if self._stiefel_momentums[index] is None:
                    self._add_stiefel_slots(variable, index)
                made = [None] * len(names)
            else:
                made = super().add_optimizer_variables(
                    [variable], names, initializer
                )
                made = [slot[0] for slot in made]
            for slot_list, slot in zip(slots, made):
                slot_list.append(slot)
        return slots[0] if isinstance(name, str) else slots

    def _add_stiefel_slots(self, variable, index):
        self._stiefel_momentums[index] = self.add_variable_from_reference(
            variable, name="momentum"
        )
        self._add_stiefel_moment_slots(variable, index)
        if self.retraction == "cayley":
            # Starting at 1 ("unknown") re-orthonormalizes X at the first
            # step, so a variable that starts off the manifold is fixed too.
            self._stiefel_drifts[index] = self._add_scalar_slot(
                variable,
                "drift",
                initializer=keras.initializers.Constant(
                    _INITIAL_SLOT_VALUES["drift"]
                ),
            )

    def reset_stiefel_slots(self, variables):
        """Resets the slots of the Stiefel variables among `variables`.

        Each slot gets the value a fresh build gives it: zero for the
        momentum and the subclass's moments, 1 ("unknown") for the drift
        estimate, so that the next step re-orthonormalizes X, as the first
        step of a fresh optimizer does. The slots are found by the
        variable's index. Other variables, and the stock slots of Stiefel
        variables (`use_ema`, gradient accumulation), are left to
        `keras_opt.optimizers.reset_slots`, which calls this method.

        Args:
            variables: Variables this optimizer was built with.

        Returns:
            The list of the slot variables that were reset.
        """
        reset = []
        for variable in variables:
            index = self._get_variable_index(variable)
            if not self._stiefel_roles[index]:
                continue
            for key, slot in self._stiefel_slots(index).items():
                value = _INITIAL_SLOT_VALUES.get(key, 0.0)
                slot.assign(ops.full(slot.shape, value, dtype=slot.dtype))
                reset.append(slot)
        return reset

    def _add_stiefel_moment_slots(self, variable, index):
        """Makes the subclass's extra slots of a Stiefel variable."""

    def _stiefel_state(self, index):
        """The subclass's extra slots of a Stiefel variable, by name."""
        return {}

    def _stiefel_direction(self, x, gradient, state):
        """Returns `(skew, tangent, new_state)` for one Stiefel step.

        `skew` and `tangent` come from `_stiefel_generator`. `state` holds
        the slots of the variable as tensors in the linalg dtype
        (`"momentum"` and those of `_stiefel_state`); `new_state` the same
        keys, with `"momentum"` the new (tangent) momentum.
        """
        raise NotImplementedError

    def _uses_group_form(self, x):
        return self.use_group_form and x.shape[-2] == x.shape[-1]

    def _stiefel_generator(self, x, m):
        """`(skew, tangent)` of the ambient direction `m` at `x`.

        `skew` is W (official form) or A = XᵀWX (group form); either way
        `tangent = W X` and `‖skew‖_F` sets the step size.
        """
        if self._uses_group_form(x):
            return stiefel.group_generator(x, m)
        skew = stiefel.skew_generator(x, m)
        return skew, ops.matmul(skew, x)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        if not self._stiefel_roles[index]:
            scale = self._rotation_step_scales[index]
            if scale is not None:
                return self._rotation_step(gradient, variable, scale)
            if self._damped_roles[index]:
                learning_rate = self._damped_rate(variable, learning_rate)
            return super().update_step(gradient, variable, learning_rate)
        dtype = linalg_dtype(variable.dtype)
        slots = self._stiefel_slots(index)
        state = {
            key: ops.cast(ops.convert_to_tensor(slot), _state_dtype(key, dtype))
            for key, slot in slots.items()
        }
        x = ops.cast(ops.convert_to_tensor(variable), dtype)
        gradient = ops.cast(gradient, dtype)
        learning_rate = ops.cast(self._get_rotation_learning_rate(), dtype)
        new_x, new_state, applied = _control.cond(
            _all_finite([gradient]),
            lambda: self._checked_step(x, gradient, state, learning_rate),
            lambda: (x, state, ops.convert_to_tensor(False)),
        )
        _warn_if_skipped(applied, self._trainable_variables[index])
        for key, slot in slots.items():
            self.assign(slot, ops.cast(new_state[key], slot.dtype))
        self.assign(variable, ops.cast(new_x, variable.dtype))

    def _rotation_step(self, gradient, variable, scale):
        """Updates a P tagged by `mark_rotation_step` with `scale`."""
        raise NotImplementedError

    def _damped_rate(self, variable, learning_rate):
        """lr/√(1 + t·d·lr²): a scale-invariant P's step size at step t."""
        learning_rate = ops.convert_to_tensor(learning_rate)
        steps = ops.cast(self.iterations, learning_rate.dtype)
        row = ops.cast(variable.shape[-1], learning_rate.dtype)
        growth = 1.0 + steps * row * ops.square(learning_rate)
        return learning_rate / ops.sqrt(growth)

    def _stiefel_slots(self, index):
        """The slots of the Stiefel variable at `index`, by role."""
        slots = {"momentum": self._stiefel_momentums[index]}
        slots.update(self._stiefel_state(index))
        if self._stiefel_drifts[index] is not None:
            slots["drift"] = self._stiefel_drifts[index]
        return slots

    def _checked_step(self, x, gradient, state, learning_rate):
        # A finite gradient can still overflow the step (StiefelAdam's
        # ‖G‖² beyond float32's range); keep x and the slots then.
        new_x, new_state = self._stiefel_step(x, gradient, state, learning_rate)
        finite = _all_finite([new_x, *new_state.values()])
        new_x = ops.where(finite, new_x, x)
        new_state = {
            key: ops.where(finite, value, state[key])
            for key, value in new_state.items()
        }
        return new_x, new_state, finite

    def _stiefel_step(self, x, gradient, state, learning_rate):
        skew, tangent, new_state = self._stiefel_direction(x, gradient, state)
        alpha = stiefel.step_size(learning_rate, skew)
        if self.retraction == "qr":
            # Householder at the first step, in case X starts off the
            # manifold; after that Y = (I + αW)X has cond(Y) <= √2.
            new_x = _control.cond(
                ops.equal(self.iterations, 0),
                lambda: stiefel.qr_retraction(x, tangent, alpha),
                lambda: stiefel.qr_retraction(
                    x, tangent, alpha, nearly_orthonormal=True
                ),
            )
            return new_x, new_state
        if self._uses_group_form(x):
            retraction = stiefel.group_cayley_retraction
        else:
            retraction = stiefel.cayley_retraction
        new_x, drift = retraction(x, skew, alpha, tangent)
        drift = state["drift"] + ops.cast(drift, "float32")
        needed = ops.greater(drift, self.drift_tolerance)
        if self.reorthonormalize_every is not None:
            due = ops.equal(
                ops.mod(self.iterations + 1, self.reorthonormalize_every), 0
            )
            needed = ops.logical_or(needed, due)
        momentum = new_state["momentum"]
        new_x, new_state["momentum"] = _control.cond(
            needed,
            lambda: stiefel.reorthonormalize(new_x, momentum, drift),
            lambda: (new_x, momentum),
        )
        new_state["drift"] = ops.where(needed, 0.0, drift)
        return new_x, new_state

    def _use_weight_decay(self, variable):
        if self._stiefel_roles[self._get_variable_index(variable)]:
            return False
        return super()._use_weight_decay(variable)

    def _get_rotation_learning_rate(self):
        rate = self._rotation_learning_rate
        if rate is None:
            return (
                self.default_rotation_learning_rate_factor
                * self._get_current_learning_rate()
            )
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            return rate(self._iterations)
        if isinstance(rate, keras.Variable):
            return rate
        return rate()

    def _add_scalar_slot(
        self, variable, name, dtype="float32", initializer="zeros"
    ):
        prefix = getattr(variable, "path", None) or variable.name
        prefix = str(prefix).replace("/", "_").replace(":", "_")
        return self.add_variable(
            shape=(),
            dtype=dtype,
            initializer=initializer,
            name=f"{prefix}_{name}",
        )

    def get_config(self):
        config = super().get_config()
        rate = self._rotation_learning_rate
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            rate = keras.optimizers.schedules.serialize(rate)
        elif isinstance(rate, keras.Variable):
            rate = float(ops.convert_to_numpy(rate))
        elif rate is not None:
            rate = keras.saving.serialize_keras_object(rate)
        config.update(
            {
                "rotation_learning_rate": rate,
                "retraction": self.retraction,
                "drift_tolerance": self.drift_tolerance,
                "reorthonormalize_every": self.reorthonormalize_every,
                "use_group_form": self.use_group_form,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("rotation_learning_rate"), dict):
            config["rotation_learning_rate"] = (
                keras.saving.deserialize_keras_object(
                    config["rotation_learning_rate"],
                    custom_objects=custom_objects,
                )
            )
        return super().from_config(config, custom_objects=custom_objects)


def linalg_dtype(dtype):
    """float64 stays float64; every other dtype does its linalg in float32."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float64" if dtype == "float64" else "float32"


def check_learning_rate(name, value, allow_none=False):
    if (value is None and allow_none) or (
        not isinstance(value, numbers.Real)
        and (
            isinstance(value, keras.optimizers.schedules.LearningRateSchedule)
            or callable(value)
        )
    ):
        return
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        check_number(name, value, low=0.0)
        return
    choices = "a float >= 0, a `LearningRateSchedule` or a callable"
    if allow_none:
        choices = "None, " + choices
    raise TypeError(
        f"Invalid type for argument `{name}`. Expected {choices}. "
        f"Received: {name}={value!r}"
    )


def _check_stiefel_variable(variable):
    shape = tuple(variable.shape)
    if len(shape) not in (2, 3) or shape[-2] < shape[-1]:
        name = getattr(variable, "path", None) or variable.name
        raise ValueError(
            f"Invalid Stiefel variable '{name}'. A Stiefel variable must be "
            "a 2-D matrix with at least as many rows as columns (a point X "
            "with XᵀX = I), or a 3-D stack of such matrices. Received: "
            f"shape={shape}"
        )


def _state_dtype(key, dtype):
    # The drift estimate is float32 for every variable dtype.
    return "float32" if key == "drift" else dtype


def _all_finite(tensors):
    finite = [ops.all(ops.isfinite(tensor)) for tensor in tensors]
    return functools.reduce(ops.logical_and, finite)


def _warn_if_skipped(applied, variable):
    # Keras has no backend-neutral way to run Python at step time inside a
    # compiled graph, so the warning is issued only where the step runs
    # eagerly; in a graph the step is skipped without a warning.
    if _control.concrete_bool(applied) is False:
        name = getattr(variable, "path", None) or variable.name
        warnings.warn(
            f"The gradient of the Stiefel variable '{name}', or the step "
            "computed from it, has a non-finite entry (NaN or inf); the "
            "optimizer skipped its step, leaving the variable and its "
            "optimizer slots unchanged.",
            UserWarning,
            stacklevel=2,
        )
