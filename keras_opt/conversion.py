"""Folding OPT models into stock Keras models, and converting the reverse way.

`fold(model)` replaces every OPT layer by the stock Keras layer it stands
for (`OPTDense` → `keras.layers.Dense`, `OPTConvND` → `keras.layers.ConvND`)
with the kernel `W = R·V` computed once. The folded model holds no
keras_opt object, so its `.keras` file, its SavedModel (`model.export`) and
any converter need nothing from this package, and it serves at the cost of
the plain network.

`convert(model, orthogonalizer=...)` goes the other way: it turns the chosen
`Dense`/`ConvND` layers of an existing (e.g. pretrained) model into OPT
layers whose frozen neurons are the existing kernel and whose rotation
starts at its identity point, so the outputs are unchanged at conversion.
Training then rotates the pretrained neurons jointly, keeping their angles
and norms: orthogonal fine-tuning (OFT) for any Keras model.
"""

import warnings

import keras
from keras import ops

from keras_opt import layers as opt_layers
from keras_opt.layers import _arguments
from keras_opt import linalg
from keras_opt import orthogonalizers

__all__ = ["fold", "convert"]

_STOCK_BY_OPT = {
    opt_layers.OPTDense: keras.layers.Dense,
    opt_layers.OPTConv1D: keras.layers.Conv1D,
    opt_layers.OPTConv2D: keras.layers.Conv2D,
    opt_layers.OPTConv3D: keras.layers.Conv3D,
}
_OPT_BY_STOCK = {stock: opt for opt, stock in _STOCK_BY_OPT.items()}


def fold(model):
    """Returns an equivalent model made of stock Keras layers only.

    Every OPT layer becomes the stock layer it stands for, with
    `kernel = R·V` (computed once, in float32, then stored in the layer's
    variable dtype) and the same bias, activation, name and dtype policy.
    Other layers are cloned with their weights. Nested Sequential and
    Functional models are folded too.

    The folded model is not compiled. Use it to serve or export:

    ```python
    folded = keras_opt.fold(model)
    folded.export("serving_dir")   # no orthogonalization op in the graph
    folded.save("folded.keras")    # loads without keras_opt
    ```

    Args:
        model: A Sequential or Functional `keras.Model`. Subclassed models
            cannot be cloned by Keras; fold their layers yourself with
            `layer.kernel`.

    Returns:
        A new `keras.Model` whose outputs equal `model`'s up to float32
        rounding.
    """
    pairs = []

    def clone(layer):
        stock = _stock_class(layer)
        if stock is None:
            new = layer.__class__.from_config(layer.get_config())
        else:
            # The stock config of the OPT layer, which is a stock layer.
            new = stock.from_config(stock.get_config(layer))
        pairs.append((layer, new, stock is not None))
        return new

    folded = _clone(model, clone)
    for old, new, is_opt in pairs:
        if is_opt:
            weights = [_as_numpy(old.kernel, new.kernel.dtype)]
            if old.use_bias:
                weights.append(_as_numpy(old.bias, new.bias.dtype))
            new.set_weights(weights)
        else:
            new.set_weights(old.get_weights())
    return folded


def convert(
    model, orthogonalizer="gram_schmidt", layers=None, block_size=None
):
    """Turns Dense/Conv layers of a model into OPT layers, outputs unchanged.

    Each converted layer keeps its bias, activation, name and dtype policy;
    its kernel W becomes the frozen basis `V = R₀ᵀ·W`, where `R₀` is the
    orthogonalizer's rotation at the start of its `rotation_initializer`,
    the map's identity point (R₀ = I for every map except Householder,
    whose factor of `I` has its last column flipped when d is even). So `R₀·V = W` and the model computes the same function
    at conversion; training then learns one rotation per layer (the
    orthogonal fine-tuning of the pretrained neurons). A kernel regularizer
    is kept: it penalizes the computed W = R·V as it did the variable. A
    kernel constraint has no counterpart (the kernel is not a variable any
    more) and is dropped with a warning.

    Example:

    ```python
    base = keras.applications.MobileNetV3Small(weights=None)
    tuned = keras_opt.convert(
        base, orthogonalizer="ogd",
        layers=lambda layer: isinstance(layer, keras.layers.Dense),
    )
    tuned.compile(optimizer=keras_opt.optimizers.StiefelSGD(0.01), loss=...)
    ```

    Args:
        model: A Sequential or Functional `keras.Model`, built.
        orthogonalizer: The orthogonalizer of the new OPT layers, as for
            `keras_opt.layers.OPTDense`.
        layers: Which layers to convert: `None` (every `Dense`, `Conv1D`,
            `Conv2D` and `Conv3D`, nested models included), a list of layer
            names, or a callable `layer -> bool`.
        block_size: The `block_size` of the new OPT layers: `None` for one
            d×d rotation per layer, or b for block-diagonal rotations of
            blocks of at most b coordinates (OFT's structure); see
            `keras_opt.layers.blocks`.

    Returns:
        A new `keras.Model` (not compiled). The input model is unchanged.
    """
    orthogonalizer = orthogonalizers.get(orthogonalizer)
    if orthogonalizer is None:
        raise ValueError(
            "Invalid value for argument `orthogonalizer`. Expected one of "
            f"{sorted(orthogonalizers.ALIASES)} or an Orthogonalizer. "
            "Received: orthogonalizer=None"
        )
    select = _selector(model, layers)
    pairs = []

    def clone(layer):
        opt = _OPT_BY_STOCK.get(type(layer))
        if opt is None or not select(layer):
            new = layer.__class__.from_config(layer.get_config())
            pairs.append((layer, new, False))
            return new
        new = opt(**_opt_kwargs(layer, orthogonalizer, block_size))
        pairs.append((layer, new, True))
        return new

    converted = _clone(model, clone)
    for old, new, is_converted in pairs:
        if is_converted:
            _move_kernel_to_basis(old, new)
        else:
            new.set_weights(old.get_weights())
    return converted


def _opt_kwargs(layer, orthogonalizer, block_size):
    """The arguments of the OPT layer that stands for stock `layer`."""
    config = layer.get_config()
    if getattr(layer, "lora_enabled", False) or config.get("groups", 1) != 1:
        raise ValueError(
            f"Cannot convert layer '{layer.name}': grouped convolutions "
            "and LoRA-enabled layers have no OPT counterpart. Received: "
            f"groups={config.get('groups', 1)}, "
            f"lora_rank={config.get('lora_rank')}"
        )
    if config.get("kernel_constraint") is not None:
        warnings.warn(
            f"Layer '{layer.name}': kernel_constraint has no counterpart in "
            "an OPT layer (the kernel is R·V, not a variable) and is "
            "dropped by `convert()`.",
            UserWarning,
            stacklevel=4,
        )
    kwargs = {
        k: v
        for k, v in config.items()
        if k not in _arguments.STOCK_KERNEL_CONFIG_KEYS
    }
    kwargs["orthogonalizer"] = orthogonalizers.deserialize(
        orthogonalizers.serialize(orthogonalizer)
    )
    kwargs["block_size"] = block_size
    return kwargs


def _move_kernel_to_basis(old, new):
    """Sets V = R₀ᵀ·W (and the bias), so that `new` computes what `old` does."""
    kernel = ops.convert_to_tensor(old.kernel, "float32")
    kernel = ops.reshape(kernel, (-1, kernel.shape[-1]))
    rotation = new.rotation
    error = float(ops.convert_to_numpy(linalg.orthogonality_error(rotation)))
    if not error <= 1e-5:
        raise ValueError(
            f"Cannot convert layer '{old.name}': the orthogonalizer's "
            "rotation at its starting point is not orthogonal, so the "
            "outputs would change. Expected max|RᵀR − I| <= 1e-5. "
            f"Received: {error:.3g} for orthogonalizer={new.orthogonalizer!r}"
        )
    basis = ops.matmul(ops.transpose(rotation), kernel)
    new.basis.assign(ops.cast(basis, new.basis.dtype))
    if old.use_bias:
        new.bias.assign(ops.convert_to_numpy(old.bias))


def _selector(model, layers):
    if layers is None:
        return lambda layer: True
    if callable(layers):
        return layers
    if isinstance(layers, str) or not all(isinstance(n, str) for n in layers):
        raise TypeError(
            "Invalid type for argument `layers`. Expected None, a list of "
            f"layer names or a callable. Received: layers={layers!r}"
        )
    names = set(layers)
    known = {layer.name for layer in opt_layers.iter_layers(model)}
    missing = sorted(names - known)
    if missing:
        raise ValueError(
            f"Unknown layer names in `layers`: {missing}. Expected names "
            f"from the model's layers: {sorted(known)}"
        )
    return lambda layer: layer.name in names


def _stock_class(layer):
    """The stock Keras class an OPT layer is, or `None` for other layers."""
    if not isinstance(layer, opt_layers.BaseOPT):
        return None
    for stock in _OPT_BY_STOCK:
        if isinstance(layer, stock):
            return stock
    raise ValueError(
        f"`fold()` does not know the stock layer of "
        f"{layer.__class__.__name__} '{layer.name}'. Expected a subclass of "
        f"{_names(_OPT_BY_STOCK)}. Received: layer={layer!r}"
    )


def _clone(model, clone_function):
    if not model.built:
        raise ValueError(
            "The model must be built (called on data or given an `Input`) "
            f"before it is transformed. Received: model={model.name!r}"
        )
    return keras.models.clone_model(
        model, clone_function=clone_function, recursive=True
    )


def _as_numpy(value, dtype):
    return ops.convert_to_numpy(ops.cast(value, dtype))


def _names(classes):
    return sorted(cls.__name__ for cls in classes)
