"""Setup script for keras_opt."""

import pathlib

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent


def get_version():
    namespace = {}
    exec((HERE / "keras_opt" / "version.py").read_text(), namespace)
    return namespace["__version__"]


# Pinned to a set tested together (Python 3.11, CPU). TFDS 4.9.10 imports
# importlib_resources without declaring it.
REQUIRED = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "numpy==2.4.6",
    "tensorflow-datasets==4.9.10",
    "importlib_resources==7.1.0",
    "absl-py==2.5.1",
    "tensorboard==2.21.0",
]
PLOT = ["matplotlib==3.11.2"]
DEV = ["pytest==9.2.0"] + PLOT

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
    extras_require={"plot": PLOT, "dev": DEV},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
