"""Setup script for keras_opt.

`install_requires` and the extras declare compatible ranges. The exact set
tested together (Python 3.11, CPU) is `constraints.txt`; install with it to
get that set: `pip install -e ".[dev]" -c constraints.txt`
(`scripts/setup_env.sh` does).
"""

import pathlib

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent


def get_version():
    namespace = {}
    exec((HERE / "keras_opt" / "version.py").read_text(), namespace)
    return namespace["__version__"]


# The core imports only keras (any backend) and numpy.
REQUIRED = ["keras>=3.15,<4", "numpy>=1.26,<3"]
TENSORFLOW = ["tensorflow>=2.18,<3"]
# The JAX backend, CPU wheels (jaxlib). For an NVIDIA GPU install
# `jax[cuda12]` instead (README, "Backends").
JAX = ["jax>=0.10,<1", "jaxlib>=0.10,<1"]
PLOT = ["matplotlib>=3.8,<4"]
# The example scripts: absl flags, TFDS data, TensorBoard logs. TFDS 4.9.10
# imports importlib_resources without declaring it.
EXAMPLES = TENSORFLOW + [
    "tensorflow-datasets>=4.9,<5",
    "importlib_resources>=6",
    "absl-py>=2,<3",
    "tensorboard>=2.18,<3",
]
DEV = ["pytest>=8"] + EXAMPLES + PLOT + JAX

setup(
    name="keras-opt",
    version=get_version(),
    description=(
        "Orthogonal Over-Parameterized Training (OPT) for Keras 3."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["keras_opt", "keras_opt.*"]),
    install_requires=REQUIRED,
    extras_require={
        "tensorflow": TENSORFLOW,
        "tf": TENSORFLOW,
        "examples": EXAMPLES,
        "plot": PLOT,
        "jax": JAX,
        "dev": DEV,
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
