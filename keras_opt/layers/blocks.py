"""Block-diagonal rotations: `R = Πᵀ·diag(R₁, …, R_k)·Π` (`block_size=b`).

With `block_size=b` an OPT layer of fan-in d rotates k = ⌈d/b⌉ disjoint
groups of coordinates of its fan-in, each by its own orthogonal block,
instead of all d coordinates by one d×d rotation. Π is a fixed random
permutation of the fan-in, so a block holds scattered coordinates (for a
convolution, several channels and kernel offsets), not a contiguous run.

Sizes: the blocks have near-equal sizes, `s = ⌊d/k⌋` and `s + 1` (the
first `d − k·s` blocks), all ≤ b; for d a multiple of b they are all b.
P (`rotation_parameter`) has shape `(k, m, m)`, m the largest size; a block
of size s uses the top-left `s×s` of its slot, and the rest of the slot
(one row and column) is set to the identity and never read. Each group of
equal sizes (at most two) goes through the layer's orthogonalizer in one
batched call, so every block is exactly the map of its own matrix: exactly
orthogonal, and with the map's own conventions (Householder's sign of the
last column, per block). Padding all blocks to m with phantom coordinates
would be one call instead of two, but the maps would then see the phantom
coordinates: Householder's sign convention would flip the phantom instead
of a real column, its dense mixing reflection and Löwdin's SVD would leak
rounding between phantom and real coordinates, and a user's callable could
mix them freely. For OGD the optimizer steps the whole `(k, m, m)` stack;
the unread row and column get a zero gradient, so their identity is kept
exactly by the Stiefel step and by its QR re-orthonormalization (tested).

`W = R·V` is computed without the d×d R: V's rows are gathered by Π, each
group is rotated as a `(count, size, n)` batch (`orthogonalizer.rotate`),
and the rows are put back by Π⁻¹; O(d·b·n) instead of O(d²·n).

Π is a non-trainable int weight (`block_permutation`), drawn from
`block_seed` (saved in the config) at build. It is a weight, not redrawn
from the seed at load, because Keras's seeded shuffle differs between
backends: a `.keras` file keeps its Π whatever backend loads it, and under a
`tf.distribute` strategy every replica reads the same mirrored Π.

Episodes: `layer.next_episode()` merges R into V, draws a new Π from
`(block_seed, episode)` (the counter is the weight `block_episode`) and
resets P, as S-OPT's episodes do; `keras_opt.callbacks.SubspaceEpisodes`
drives them in `fit`. Over the episodes every pair of coordinates can
share a block. Measured on Cora (3 seeds, `docs/benchmarks.md`,
"Block-diagonal rotations"): b = 8 with Π redrawn every 25 steps, 80.7 %
test accuracy, against 80.1 % for full OPT and 76.4 % for fixed blocks of
8 (77.6 % for episodes that merge and reset but keep Π).
"""

import collections
import random

import keras
from keras import ops

from keras_opt import linalg
from keras_opt import regularizers

Group = collections.namedtuple("Group", ["first", "count", "size", "row"])


class Layout:
    """The blocks of a fan-in d for `block_size` b: how many, which sizes.

    Attributes:
        num_blocks: k = ⌈d/b⌉.
        storage: m, the largest block size (P is `(k, m, m)`).
        groups: `Group(first, count, size, row)` per size: blocks
            `first .. first + count − 1` have `size` coordinates, starting at
            row `row` of the permuted fan-in.
        sizes: the size of every block.
    """

    def __init__(self, block_size, fan_in):
        self.num_blocks = -(-fan_in // block_size)
        small, num_large = divmod(fan_in, self.num_blocks)
        self.storage = small + (1 if num_large else 0)
        self.groups = []
        if num_large:
            self.groups.append(Group(0, num_large, small + 1, 0))
        if self.num_blocks > num_large:
            self.groups.append(
                Group(
                    num_large,
                    self.num_blocks - num_large,
                    small,
                    num_large * (small + 1),
                )
            )
        self.sizes = [g.size for g in self.groups for _ in range(g.count)]

    def slices(self, matrix):
        """The used `(count, size, size)` part of `(k, m, m)` per group."""
        return [
            matrix[g.first : g.first + g.count, : g.size, : g.size]
            for g in self.groups
        ]


def check_arguments(block_size, block_seed, subspace):
    """Validates `block_size`; returns `(block_size, block_seed)`."""
    if block_size is None:
        return None, block_seed
    if not isinstance(block_size, int) or isinstance(block_size, bool):
        raise TypeError(
            "Invalid type for argument `block_size`. Expected None or a "
            f"positive int. Received: block_size={block_size!r} of type "
            f"{type(block_size).__name__}"
        )
    if block_size < 1:
        raise ValueError(
            "Invalid value for argument `block_size`. Expected None or a "
            f"positive int. Received: block_size={block_size}"
        )
    if subspace is not None:
        raise ValueError(
            "An OPT layer rotates either a random subspace per episode "
            "(S-OPT, `subspace`) or fixed blocks of its fan-in "
            "(`block_size`), not both. Expected: `subspace=None` with "
            f"`block_size`. Received: block_size={block_size}, "
            f"subspace={subspace!r}"
        )
    if block_seed is None:
        block_seed = random.randint(0, 2**31 - 1)
    return block_size, block_seed


def rotation_spec(layer, fan_in, losses):
    """`(shape, initializer, regularizer)` of P for a block layer."""
    layout = Layout(layer.block_size, fan_in)
    layer.block_layout = layout
    shape = (layout.num_blocks, layout.storage, layout.storage)
    initializer = layer.rotation_initializer

    def initial_value(shape, dtype=None):
        size = layout.storage
        if isinstance(initializer, keras.initializers.Identity):
            value = ops.broadcast_to(initializer((size, size), dtype), shape)
        else:
            value = initializer(shape, dtype)
        return _identity_where_unused(layout, value)

    regularizer = _BlockLoss(layout, losses) if losses else None
    return shape, initial_value, regularizer


def _identity_where_unused(layout, value):
    eye = ops.eye(layout.storage, dtype=value.dtype)
    used = ops.concatenate(
        [
            ops.broadcast_to(
                ops.pad(
                    ops.ones((g.size, g.size), "bool"),
                    [(0, layout.storage - g.size)] * 2,
                    constant_values=False,
                ),
                (g.count, layout.storage, layout.storage),
            )
            for g in layout.groups
        ],
        axis=0,
    )
    return ops.where(used, value, eye)


class _BlockLoss:
    """The rotation losses of a block layer, on the used entries of P.

    Elementwise regularizers (Keras's L1, L2) are summed over the groups.
    An `OrthogonalityPenalty` (OR's `β‖P Pᵀ − I‖_F`) is that of the
    block-diagonal d×d matrix, `β (Σ_i ‖P_i P_iᵀ − I‖²_F)^(1/2)`.
    """

    def __init__(self, layout, losses):
        for loss in losses:
            if isinstance(loss, (regularizers.SRIP, regularizers.MHE)):
                raise ValueError(
                    "A rotation with `block_size` is a stack of blocks; "
                    f"{type(loss).__name__} has no block form. Expected: "
                    "an elementwise regularizer (L1, L2) or an "
                    "OrthogonalityPenalty. Received: rotation_regularizer="
                    f"{loss!r}"
                )
        self.layout = layout
        self.losses = losses

    def __call__(self, matrix):
        parts = self.layout.slices(ops.convert_to_tensor(matrix))
        total = 0.0
        for loss in self.losses:
            if isinstance(loss, regularizers.OrthogonalityPenalty):
                squares = sum(
                    ops.sum(linalg.orthogonality_penalty(p, squared=True))
                    for p in parts
                )
                if not loss.squared:
                    squares = ops.sqrt(ops.maximum(squares, 1e-30))
                total = total + loss.factor * squares
            else:
                total = total + sum(loss(p) for p in parts)
        return total


def build(layer, fan_in):
    """Makes the permutation and episode weights of a block layer.

    Made after P, V, the bias and g, as int32 non-trainable weights.
    """
    layer.block_permutation = layer.add_weight(
        name="block_permutation",
        shape=(fan_in,),
        dtype="int32",
        initializer=lambda shape, dtype: sample_permutation(
            layer.block_seed, fan_in
        ),
        trainable=False,
        autocast=False,
    )
    layer.block_episode = layer.add_weight(
        name="block_episode",
        shape=(),
        dtype="int32",
        initializer="zeros",
        trainable=False,
        autocast=False,
    )


def sample_permutation(seed, fan_in, episode=0):
    """The permutation Π of an episode, from `(seed, episode)` only."""
    seed = (int(seed) * 1_000_003 + int(episode)) % (2**31 - 1)
    return keras.random.shuffle(ops.arange(fan_in, dtype="int32"), seed=seed)


def next_episode(layer):
    """Redraws Π of a block layer: merge, resample, reset.

    Merges the rotation into the basis (V ← R·V), draws the permutation of
    the next episode from `(block_seed, episode)`, and resets P to the
    map's identity point P₀ (storing V ← R₀ᵀ·R·V where `R₀ = map(P₀)` is not
    exactly I, as Householder's), so the layer computes the same function
    before and after. Over the episodes every pair of coordinates can share
    a block, so the product of the episodes' rotations is a dense
    rotation. Call it between steps, outside a compiled function;
    `keras_opt.callbacks.SubspaceEpisodes` calls it in `fit` and also
    resets the optimizer state of P.
    """
    if layer.trainable_basis or not getattr(layer, "save_basis", True):
        raise ValueError(
            f"Layer '{layer.name}' cannot start a new block episode: an "
            "episode merges the rotation into the basis V, which must be "
            "fixed and saved. Expected: trainable_basis=False (and "
            "save_basis=True). Received: "
            f"trainable_basis={layer.trainable_basis}, "
            f"save_basis={getattr(layer, 'save_basis', True)}"
        )
    merged = kernel(layer)
    episode = int(ops.convert_to_numpy(layer.block_episode)) + 1
    layout = layer.block_layout
    size = layout.storage
    start = layer.orthogonalizer.rotation_initializer(
        (size, size), layer.rotation_parameter.dtype
    )
    start = ops.broadcast_to(start, layer.rotation_parameter.shape)
    layer.rotation_parameter.assign(_identity_where_unused(layout, start))
    layer.block_permutation.assign(
        sample_permutation(layer.block_seed, layer.basis.shape[0], episode)
    )
    layer.block_episode.assign(episode)
    layer.basis.assign(transpose_times(layer, merged))


def blockwise(layout, permutation, p, x, rotate_group):
    """`R·x` for `R = Πᵀ·diag(R₁, …, R_k)·Π`, without forming R.

    A pure function of its inputs (the layers call it with their variables).

    Args:
        layout: The `Layout` of the blocks.
        permutation: Π as an int vector of length d: `(Π x)_i = x_{π(i)}`.
        p: The `(k, m, m)` parameters as the map takes them.
        x: A tensor of shape `(d, n)`.
        rotate_group: `rotate_group(p_group, rows)` returns the
            `(count, size, n)` rows of a group rotated by the blocks made
            from its `(count, size, size)` parameters (one batched call).

    Returns:
        A tensor of shape `(d, n)`.
    """
    permutation = ops.convert_to_tensor(permutation)
    x = ops.take(x, permutation, axis=0)
    parts = []
    for group, p_group in zip(layout.groups, layout.slices(p)):
        rows = x[group.row : group.row + group.count * group.size]
        rows = ops.reshape(rows, (group.count, group.size, -1))
        rotated = rotate_group(p_group, rows)
        parts.append(ops.reshape(rotated, (group.count * group.size, -1)))
    y = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)
    return ops.take(y, ops.argsort(permutation), axis=0)


def _apply(layer, x, rotate_group):
    return blockwise(
        layer.block_layout,
        layer.block_permutation,
        layer._map_input(),
        x,
        rotate_group,
    )


def kernel(layer):
    """`R·V` of a block layer, without forming the d×d R."""
    return _apply(
        layer, ops.convert_to_tensor(layer.basis), layer.orthogonalizer.rotate
    )


def rotation(layer):
    """The d×d R of a block layer (a debugging view: d² entries)."""
    eye = ops.eye(layer.basis.shape[0], dtype=layer.rotation_parameter.dtype)
    return _apply(layer, eye, _left_product(layer.orthogonalizer))


def transpose_times(layer, x):
    """`Rᵀ·x` for `x` of shape `(d, n)`, blockwise."""
    return _apply(layer, x, _left_product(layer.orthogonalizer, True))


def times_rotation(layer, x):
    """`x·R` for `x` of shape `(..., d)`, blockwise (CLS-OPT's `(x·R)·V`)."""
    flat = linalg.transpose(ops.reshape(x, (-1, x.shape[-1])))
    product = linalg.transpose(transpose_times(layer, flat))
    return ops.reshape(product, ops.shape(x))


def _left_product(orthogonalizer, transpose=False):
    def product(p, rows):
        blocks = orthogonalizer(p)
        if transpose:
            blocks = linalg.transpose(blocks)
        return ops.matmul(ops.cast(blocks, rows.dtype), rows)

    return product


def parameter_count(layer, exact):
    """The paper's count of a block rotation: Σ b_i(b_i − 1)/2 (or Σ b_i²)."""
    return sum(
        size * (size - 1) // 2 if exact else size * size
        for size in layer.block_layout.sizes
    )
