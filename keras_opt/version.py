"""The keras_opt version, read by `setup.py` and `keras_opt.__version__`."""

__version__ = "0.5.0"
