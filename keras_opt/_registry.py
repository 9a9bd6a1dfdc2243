"""What the registries `orthogonalizers` and `regularizers` share."""

import keras


def objects_dict(objects, aliases):
    """`{class name: class}` of `objects`, then the `aliases`."""
    found = {cls.__name__: cls for cls in objects}
    found.update(aliases)
    return found


def deserialize(config, module_objects, custom_objects=None):
    """Returns an object from its config, looked up in `module_objects`."""
    return keras.saving.deserialize_keras_object(
        config, module_objects=module_objects, custom_objects=custom_objects
    )
