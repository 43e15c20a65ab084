"""TensorFlow and Keras, imported once, quietly, for every stage that trains or predicts."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ info lines once logging is set up


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    # TensorFlow prints its start-up notes (oneDNN, CPU features) before it reads
    # TF_CPP_MIN_LOG_LEVEL, straight to file descriptor 2; a stage's stderr is for its
    # own messages. Python exceptions still carry their text.
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


with _quiet_stderr():
    import keras
    import tensorflow as tf

    tf.constant(0)  # the runtime's own start-up notes come with its first op

__all__ = ["keras", "tf"]
