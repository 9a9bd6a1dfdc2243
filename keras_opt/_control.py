"""Control flow that runs eagerly when its predicate has a value.

On JAX, `ops.cond` outside `jit` traces and compiles both branches at every
call, since each call's branches are new closures, so a Stiefel step in
an eager loop (`optimizer.apply`, `run_eagerly=True`) cost a compilation. A
predicate with a value picks its branch in Python, as `tf.cond` does
eagerly; a traced or symbolic one goes to `ops.cond`.
"""

from keras import ops


def concrete_bool(x):
    """`bool(x)` for a scalar with a value; `None` inside a traced graph."""
    try:
        return bool(ops.convert_to_numpy(x))
    except (TypeError, NotImplementedError):
        # A JAX tracer raises a TypeError, a TensorFlow graph tensor a
        # NotImplementedError: neither has a value yet.
        return None


def cond(pred, true_fn, false_fn):
    """`ops.cond(pred, true_fn, false_fn)`, in Python for a concrete `pred`."""
    value = concrete_bool(pred)
    if value is None:
        return ops.cond(pred, true_fn, false_fn)
    return true_fn() if value else false_fn()
