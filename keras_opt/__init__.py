"""keras_opt: Orthogonal Over-Parameterized Training for Keras 3."""

from keras_opt import layers
from keras_opt import linalg
from keras_opt import orthogonalizers
from keras_opt import stiefel
from keras_opt.version import __version__
