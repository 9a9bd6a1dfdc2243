"""Example programs of keras_opt; run them as `python -m examples.<name>`."""
