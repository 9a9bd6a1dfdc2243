"""OPT layers: Keras layers whose kernel is W = R·V with R orthogonal."""

from keras_opt.layers.base_opt import BaseOPT
from keras_opt.layers.base_opt_conv import BaseOPTConv
from keras_opt.layers.opt_classifier import OPTClassifier
from keras_opt.layers.opt_conv1d import OPTConv1D
from keras_opt.layers.opt_conv2d import OPTConv2D
from keras_opt.layers.opt_conv3d import OPTConv3D
from keras_opt.layers.opt_dense import OPTDense
from keras_opt.layers.walk import iter_layers
from keras_opt.layers.walk import opt_layers
