"""keras_opt: Orthogonal Over-Parameterized Training for Keras 3.

Modules:

- `keras_opt.layers`: `OPTDense`, `OPTConv1D`, `OPTConv2D`, `OPTConv3D`
  and the CLS-OPT head `OPTClassifier`,
  whose kernel is W = R·V with R orthogonal.
- `keras_opt.orthogonalizers`: the maps P → R of the paper, by name.
- `keras_opt.optimizers`: `StiefelSGD` and `StiefelAdam` (the paper's OGD).
- `keras_opt.energy`: the hyperspherical energy of a layer's neurons.
- `keras_opt.initializers`: `MinimumEnergy`, evenly spread prototypes.
- `keras_opt.assignment`: which class gets which prototype
  (`OPTClassifier.assign_prototypes`).
- `keras_opt.recipes`: the `"default"` and `"official"` presets.
- `keras_opt.callbacks`: energy and orthogonality monitors for `fit`, and
  `SubspaceEpisodes` for S-OPT (`subspace=` of the OPT layers).
- `keras_opt.regularizers`: the paper's baseline penalties (OR, SRIP, MHE).
- `keras_opt.baselines`: the paper's baselines by name.
- `keras_opt.models`: the paper's networks (CNN-6, Wide CNN-9, CIFAR
  ResNets, ...) and `paper_parameter_count`.
- `keras_opt.plot`: training-dynamics figures (needs matplotlib).
- `keras_opt.linalg`, `keras_opt.stiefel`: the math (orthogonalization maps,
  Stiefel geometry).
- `keras_opt.variable_tags`: the tags that mark Stiefel variables.
- `keras_opt.fold`, `keras_opt.convert`: OPT models to stock Keras models
  (for serving and export) and back (orthogonal fine-tuning).
- `keras_opt.distribute` (imported on demand, needs TensorFlow): strategies
  by name and a fault-tolerant training loop for several workers.
"""

from keras_opt import assignment
from keras_opt import baselines
from keras_opt import callbacks
from keras_opt import energy
from keras_opt import initializers
from keras_opt import layers
from keras_opt import linalg
from keras_opt import models
from keras_opt import optimizers
from keras_opt import orthogonalizers
from keras_opt import plot
from keras_opt import recipes
from keras_opt import regularizers
from keras_opt import stiefel
from keras_opt import variable_tags
from keras_opt.conversion import convert
from keras_opt.conversion import fold
from keras_opt.version import __version__
