"""The OPT paper's networks, built like `keras.applications`."""

from keras_opt.models.cnn import cnn6
from keras_opt.models.cnn import cnn9
from keras_opt.models.cnn import wide_cnn9
from keras_opt.models.mlp import mlp
from keras_opt.models.parameter_count import paper_parameter_count
from keras_opt.models.resnet import resnet20
from keras_opt.models.resnet import resnet32
