"""S-OPT: an OPT layer that rotates a random coordinate subspace per episode.

With `subspace=p`, an OPT layer rotates only a random p-dimensional
coordinate subspace I of its fan-in per episode: P (and R) are p×p, start
at the identity, and `W = V` with rows I replaced by `R·V[I]` (a gather and
a scatter; memory and time grow with p², not d²). `layer.next_episode()`
ends an episode: it merges R into V (V[I] ← R·V[I]), samples the next I and
resets P to the identity, so the layer computes the same function before
and after. The seed, the episode counter and I are non-trainable int
weights of the layer (`subspace_seed_variable`, `subspace_episode`,
`subspace_indices`): the draw of I depends only on (seed, episode), so it
is the same on every replica and after a resume.
`keras_opt.callbacks.SubspaceEpisodes` drives the episodes in `fit` and
also resets the optimizer state of P. This is the official `sopt_gs` code
(Liu et al., 2021, §4 of `opt_reference.md`), with P of shape (p, p).
"""

import random

import keras
from keras import ops


def check_arguments(subspace, subspace_seed, trainable_basis):
    """Validates `subspace`; returns `(subspace, subspace_seed)`."""
    if subspace is None:
        return None, subspace_seed
    is_int = isinstance(subspace, int) and not isinstance(subspace, bool)
    expected = "None, a positive int p or a float fraction of d in (0, 1]"
    if not is_int and not isinstance(subspace, float):
        raise TypeError(
            f"Invalid type for argument `subspace`. Expected {expected}. "
            f"Received: subspace={subspace!r} of type "
            f"{type(subspace).__name__}"
        )
    if (is_int and subspace < 1) or (not is_int and not 0.0 < subspace <= 1):
        raise ValueError(
            f"Invalid value for argument `subspace`. Expected {expected}. "
            f"Received: subspace={subspace!r}"
        )
    if trainable_basis:
        raise ValueError(
            "S-OPT merges its rotation into the fixed basis V, so V cannot "
            "be trained. Expected: `trainable_basis=False` with `subspace`. "
            f"Received: subspace={subspace!r}, trainable_basis=True"
        )
    if subspace_seed is None:
        subspace_seed = random.randint(0, 2**31 - 1)
    return subspace, subspace_seed


def size(subspace, fan_in):
    """The dimension p of the rotated subspace, or `None` for full OPT."""
    if subspace is None:
        return None
    if isinstance(subspace, float):
        return min(fan_in, max(1, round(subspace * fan_in)))
    if subspace > fan_in:
        raise ValueError(
            "Invalid value for argument `subspace`. Expected at most the "
            f"fan-in d = {fan_in} of the layer. Received: subspace={subspace}"
        )
    return subspace


def build(layer, fan_in):
    """Makes the S-OPT weights of `layer` (after P, V and the bias)."""

    def int_weight(name, shape, initializer):
        return layer.add_weight(
            name=name,
            shape=shape,
            dtype="int32",
            initializer=initializer,
            trainable=False,
            autocast=False,
        )

    layer.subspace_seed_variable = int_weight(
        "subspace_seed", (), keras.initializers.Constant(layer.subspace_seed)
    )
    layer.subspace_episode = int_weight("subspace_episode", (), "zeros")
    layer.subspace_indices = int_weight(
        "subspace_indices",
        (layer.subspace_size,),
        lambda shape, dtype: sample_indices(
            layer.subspace_seed, 0, fan_in, layer.subspace_size
        ),
    )


def sample_indices(seed, episode, fan_in, subspace_size):
    """The sorted index set I of an episode, from `(seed, episode)` only."""
    seed = (int(seed) * 1_000_003 + int(episode)) % (2**31 - 1)
    order = keras.random.shuffle(ops.arange(fan_in, dtype="int32"), seed=seed)
    return ops.sort(order[:subspace_size])


def kernel(layer):
    """`R·V` of an S-OPT layer: V with rows I replaced by `R·V[I]`."""
    return _rotate_rows(layer, layer.subspace_indices)


def _rotate_rows(layer, indices):
    indices = ops.convert_to_tensor(indices)
    basis = ops.convert_to_tensor(layer.basis)
    rotated = layer.orthogonalizer.rotate(
        layer._map_input(), ops.take(basis, indices, axis=0)
    )
    return _put_rows(basis, indices, rotated)


def _put_rows(basis, indices, rows):
    return ops.scatter_update(
        basis, ops.expand_dims(indices, 1), ops.cast(rows, basis.dtype)
    )


def next_episode(layer):
    """Ends the S-OPT episode of `layer`: merge, resample, reset.

    Merges the rotation into the basis, V ← W (only the rows I change:
    V[I] ← R·V[I]), then samples the next index set I from the seed and the
    incremented episode counter and resets P to the identity, so the layer
    computes the same function before and after. (Where the
    orthogonalizer's φ(I) is not I, as Householder's for even p, the new
    rows are stored as φ(I)ᵀ·W[I'], which keeps W too.) The optimizer state
    of P is not the layer's: `keras_opt.callbacks.next_subspace_episode`
    and `SubspaceEpisodes` reset both. Call it between steps, outside a
    compiled function.
    """
    if layer.subspace_size is None:
        raise ValueError(
            f"Layer '{layer.name}' has no subspace episodes: it is a full "
            "OPT layer. Expected: a built layer with `subspace` set. "
            f"Received: subspace={layer.subspace!r}, built={layer.built}"
        )
    identity = ops.eye(layer.subspace_size, dtype=layer.rotation_parameter.dtype)
    basis = kernel(layer)
    episode = int(ops.convert_to_numpy(layer.subspace_episode)) + 1
    seed = int(ops.convert_to_numpy(layer.subspace_seed_variable))
    indices = sample_indices(
        seed, episode, layer.basis.shape[0], layer.subspace_size
    )
    reset = ops.convert_to_numpy(layer.orthogonalizer(identity))
    if not (reset == ops.convert_to_numpy(identity)).all():
        rows = ops.matmul(ops.transpose(reset), ops.take(basis, indices, axis=0))
        basis = _put_rows(basis, indices, rows)
    layer.basis.assign(basis)
    layer.subspace_episode.assign(episode)
    layer.subspace_indices.assign(indices)
    layer.rotation_parameter.assign(identity)
