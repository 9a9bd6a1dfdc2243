"""Stiefel-manifold optimizers: OPT's OGD (Cayley SGD) and Cayley Adam."""

from keras_opt.optimizers.slots import reset_slots
from keras_opt.optimizers.stiefel_adam import StiefelAdam
from keras_opt.optimizers.stiefel_sgd import StiefelSGD
