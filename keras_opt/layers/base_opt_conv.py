"""The shared machinery of the OPT convolution layers."""

import math

import keras
from keras import ops

from keras_opt.layers.base_opt import BaseOPT


def _standardize_tuple(value, rank, name):
    values = (value,) * rank if isinstance(value, int) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if (
        values is None
        or len(values) != rank
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        or not all(v > 0 for v in values)
    ):
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a positive int or "
            f"a tuple of {rank} positive ints. Received: {name}={value!r}"
        )
    return values


def _output_length(length, kernel_size, stride, padding, dilation):
    if length is None:
        return None
    if padding == "valid":
        length = length - dilation * (kernel_size - 1)
        return max(0, (length + stride - 1) // stride)
    return (length + stride - 1) // stride


class BaseOPTConv(BaseOPT):
    """Base class of `OPTConv1D`, `OPTConv2D` and `OPTConv3D`.

    The kernel is `W = R·V` with d = prod(kernel_size)·C_in, reshaped to the
    Keras layout `kernel_size + (C_in, filters)`, flattened in that order, as
    the official OPT code does.

    Args:
        rank: The number of spatial dimensions.
        filters: Positive int, the number of neurons (output channels).
        kernel_size: Int or tuple of `rank` ints.
        strides: Int or tuple of `rank` ints.
        padding: `"valid"` or `"same"` (and `"causal"` for rank 1).
        data_format: `"channels_last"` or `"channels_first"`. Defaults to
            `keras.config.image_data_format()`.
        dilation_rate: Int or tuple of `rank` ints.
        **kwargs: The arguments of `BaseOPT`.
    """

    def __init__(
        self,
        rank,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            not isinstance(filters, int)
            or isinstance(filters, bool)
            or filters <= 0
        ):
            raise ValueError(
                "Invalid value for argument `filters`. Expected a strictly "
                f"positive int. Received: filters={filters!r}"
            )
        paddings = ("valid", "same", "causal") if rank == 1 else ("valid", "same")
        if not isinstance(padding, str) or padding.lower() not in paddings:
            raise ValueError(
                f"Invalid value for argument `padding`. Expected one of "
                f"{list(paddings)}. Received: padding={padding!r}"
            )
        data_format = data_format or keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                "Invalid value for argument `data_format`. Expected one of "
                "['channels_last', 'channels_first']. Received: "
                f"data_format={data_format!r}"
            )
        self.rank = rank
        self.filters = filters
        self.kernel_size = _standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = _standardize_tuple(strides, rank, "strides")
        self.padding = padding.lower()
        self.data_format = data_format
        self.dilation_rate = _standardize_tuple(
            dilation_rate, rank, "dilation_rate"
        )
        if self.padding == "causal" and data_format != "channels_last":
            raise ValueError(
                "`padding='causal'` needs `data_format='channels_last'`. "
                f"Received: data_format={data_format!r}"
            )
        self.input_spec = keras.InputSpec(min_ndim=rank + 2)

    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"{self.__class__.__name__} expects inputs of rank "
                f"{self.rank + 2}. Received: input_shape={tuple(input_shape)}"
            )
        channels = input_shape[self._channel_axis()]
        if channels is None:
            raise ValueError(
                f"The channel dimension of the inputs to "
                f"{self.__class__.__name__} must be known at build time: it "
                "sets the fan-in d of the rotation. Expected: an int. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        fan_in = math.prod(self.kernel_size) * channels
        self._build_opt_weights(
            fan_in, self.filters, self.kernel_size + (channels, self.filters)
        )
        self.input_spec = keras.InputSpec(
            ndim=self.rank + 2, axes={self._channel_axis(): channels}
        )

    def call(self, inputs, training=None):
        kernel = ops.cast(self._kernel_for_call(training), self.compute_dtype)
        padding = self.padding
        if padding == "causal":
            left = self.dilation_rate[0] * (self.kernel_size[0] - 1)
            inputs = ops.pad(inputs, [[0, 0], [left, 0], [0, 0]])
            padding = "valid"
        outputs = ops.conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        if self.use_bias:
            if self.data_format == "channels_last":
                bias = self.bias
            else:
                bias = ops.reshape(self.bias, (self.filters,) + (1,) * self.rank)
            outputs = ops.add(outputs, bias)
        return self._activate(outputs)

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_last":
            spatial = input_shape[1:-1]
        else:
            spatial = input_shape[2:]
        spatial = tuple(
            _output_length(
                length,
                self.kernel_size[i],
                self.strides[i],
                self.padding,
                self.dilation_rate[i],
            )
            for i, length in enumerate(spatial)
        )
        if self.data_format == "channels_last":
            return (input_shape[0],) + spatial + (self.filters,)
        return (input_shape[0], self.filters) + spatial

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
            }
        )
        return config
