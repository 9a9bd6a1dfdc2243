"""pytest setup shared by every test file.

The MirroredStrategy tests need two logical CPUs, which TensorFlow only
allows to be configured before it runs its first op. pytest imports every
test module in one process, so configure them here, before any of them.
Where that fails (TensorFlow ran an op first), those tests skip; where the
environment variable `CI` is set, the run fails instead, so that a CI run
cannot pass without them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

# Which tests need TensorFlow, and the per-backend counts at the end of a run.
from tests.backends import pytest_collection_modifyitems  # noqa: E402,F401
from tests.backends import pytest_terminal_summary  # noqa: E402,F401
from tests.backends import release_compiled_code  # noqa: E402,F401

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    try:
        tf.config.set_logical_device_configuration(
            tf.config.list_physical_devices("CPU")[0],
            [tf.config.LogicalDeviceConfiguration()] * 2,
        )
    except RuntimeError as error:
        if os.environ.get("CI"):
            raise RuntimeError(
                "Could not configure the 2 logical CPUs that the "
                "MirroredStrategy tests need: TensorFlow ran an op before "
                "tests/conftest.py. Expected: nothing initializes TensorFlow "
                "before the conftest (with `CI` set, this fails the run "
                f"instead of skipping those tests). Received: {error}"
            ) from error

