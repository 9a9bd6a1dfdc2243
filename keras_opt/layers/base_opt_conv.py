"""The kernel layout of the OPT convolutions, shared by OPTConv1D/2D/3D."""

import keras

from keras_opt.layers.base_opt import BaseOPT


class BaseOPTConv(BaseOPT):
    """Mixed in before `keras.layers.ConvND`; see `BaseOPT`.

    The fan-in is d = prod(kernel_size)·C_in, and `R·V` is reshaped to the
    Keras layout `kernel_size + (C_in, filters)`, flattened in that order,
    as the official OPT code does.
    """

    def _build_kernel_shape(self, input_shape):
        channel_axis = -1 if self.data_format == "channels_last" else 1
        channels = input_shape[channel_axis]
        if len(input_shape) != self.rank + 2 or channels is None:
            raise ValueError(
                f"{self.__class__.__name__} expects inputs of rank "
                f"{self.rank + 2} whose channel dimension is known at build "
                "time (it sets the fan-in d of the rotation). Received: "
                f"input_shape={tuple(input_shape)}"
            )
        # The stock check of the output size (positive in every dimension).
        self.compute_output_shape(input_shape)
        self.input_spec = keras.InputSpec(
            ndim=self.rank + 2, axes={channel_axis: channels}
        )
        return self.kernel_size + (channels, self.filters)
