"""The argument docs every OPT layer shares, written once."""

import re
import textwrap

from keras_opt import orthogonalizers


def _orthogonalizer_argument():
    names = {}
    for name, cls in orthogonalizers.ALIASES.items():
        names.setdefault(cls, []).append(f'`"{name}"`')
    choices = ", ".join(
        f"{first} ({', '.join(aliases)})" if aliases else first
        for first, *aliases in names.values()
    )
    return textwrap.fill(
        f"orthogonalizer: How R is made from P. One of {choices}, a "
        "`keras_opt.orthogonalizers.Orthogonalizer` or a callable P -> R. "
        'Defaults to `"gram_schmidt"`.',
        width=80,
        initial_indent=" " * 8,
        subsequent_indent=" " * 12,
        break_long_words=False,
        break_on_hyphens=False,
    ).lstrip()


OPT_ARGUMENTS = f"""{_orthogonalizer_argument()}
        basis_initializer: Initializer of V. Defaults to He-normal N(0, 2/d),
            not truncated. Pass a seeded initializer for reproducible
            neurons, or a non-zero mean for the paper's initial-energy
            ablation.
        rotation_initializer: Initializer of P. Defaults to the recipe's:
            the map's identity point (P = I; P = 0 for `"cayley"`), or with
            `recipe="official"` the official code's N(0, 1) (the identity
            for `"ogd"`).
        rotation_regularizer: Regularizer of P: a Keras regularizer, or a
            `keras_opt.regularizers` name (such as `"srip"`), instance or
            config. It is added to the orthogonalizer's own regularizer
            (OR's `β‖P Pᵀ − I‖_F`), never replaces it.
        use_gain: Whether the layer learns one gain per neuron,
            `W = R·V·diag(g)` with g = exp(`log_gain`) starting at 1 (a gain
            changes no angle between neurons). Defaults to the recipe's:
            `True` for `"default"`, `False` for `"official"`.
        trainable_basis: Whether V is trained too (the paper's FN ablation).
        recipe: `"default"` or `"official"`, the preset of
            `keras_opt.recipes`: where P starts, whether the layer learns a
            gain, whether every exact map takes first steps as large as
            Gram–Schmidt's, which vectors of P Gram–Schmidt orthonormalizes
            (the columns, or the official rows), and whether `StiefelAdam`
            steps an exact map's P as it steps OGD's R.
            `"official"` is the released code exactly.
        subspace: S-OPT: the dimension p of the random coordinate subspace
            of the fan-in that is rotated per episode, an int, or a float
            fraction of d (`0.25` for d/4, rounded). `None` (the default)
            for full OPT. See `keras_opt.layers.subspace`.
        subspace_seed: Int seed of the subspace sampling. Defaults to one
            drawn at construction (saved in the config).
        block_size: `None` (the default) for one d×d rotation, or a
            positive int b: R is block-diagonal, `Πᵀ·diag(R₁, …, R_k)·Π`,
            with k = ⌈d/b⌉ blocks of near-equal sizes ≤ b on a fixed random
            permutation Π of the fan-in, each made by the orthogonalizer
            from its own block of P (shape `(k, m, m)`, m the largest
            size). A step costs O(d·b·n) instead of O(d²·n). Not with
            `subspace`. See `keras_opt.layers.blocks`.
        block_seed: Int seed of Π. Defaults to one drawn at construction
            (saved in the config); Π itself is the non-trainable weight
            `block_permutation`."""

KERAS_ARGUMENTS = """kernel_regularizer: Regularizer of the kernel W = R·V·diag(g)
            that the layer computes, as the stock layer's is of its kernel
            variable: the same `keras.regularizers.L2(c)` gives an OPT layer
            and a stock one the same penalty on W. Added with `add_loss` at
            every call, on the W the call uses. With an orthogonal R an L2
            penalty acts on the gains only.
        activation, use_bias, bias_initializer, bias_regularizer,
        activity_regularizer, bias_constraint, **kwargs: As in the stock
            layer. Its other kernel arguments (`kernel_initializer`,
            `kernel_constraint`, `lora_rank`) raise a `TypeError` naming the
            OPT argument to use instead, if any."""


CONV_COMMON = """The angles between filters, and the layer's
    hyperspherical energy, stay those of the random start. `layer.kernel`
    returns W, computed from the variables at every access, so the stock
    convolution, shapes and config work unchanged; `layer.rotation` returns
    R. `groups` must be 1.

    With `orthogonalizer="ogd"` (or `"stiefel"`) P is R itself, starts at the
    identity and is kept orthogonal by `keras_opt.optimizers.StiefelSGD` or
    `StiefelAdam` (the paper's OGD).

    Args:
        filters, kernel_size, strides, padding, data_format, dilation_rate:
            As in `keras.layers.{stock}`.
        {{keras_arguments}}
        {{opt_arguments}}"""


def with_opt_arguments(cls):
    """Fills the `{{...}}` placeholders of an OPT layer's docstring."""
    doc = re.sub(
        r"\{\{conv_common:(\w+)\}\}",
        lambda match: CONV_COMMON.replace("{stock}", match.group(1)),
        cls.__doc__,
    )
    cls.__doc__ = doc.replace("{{opt_arguments}}", OPT_ARGUMENTS).replace(
        "{{keras_arguments}}", KERAS_ARGUMENTS
    )
    return cls
