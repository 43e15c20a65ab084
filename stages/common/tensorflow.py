"""TensorFlow and Keras, imported once, quietly, with their arithmetic pinned, for every
stage that trains or predicts.

Besides the params, the host and the user's environment move the bits of a result
(reproduction/README.md has the measurements): the instruction set oneDNN picks its kernels
for, whether oneDNN's graph rewrites or XLA run, which kernel TensorFlow's contractions use,
Keras's settings, and the number of intra-op threads that Eigen and oneDNN split their sums
between. All but the last are fixed here, before TensorFlow loads, whatever the environment
says; the thread count is the `threads` param, set by `pin_threads` before the first op.
The CPU's cache sizes move the bits too, and no setting reaches them.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

from stages.common.errors import PipelineError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ info lines once logging is set up

# Overwritten, not defaulted: a value left in a shell's profile must not change the bits.
PINNED_ENVIRONMENT = {
    # AVX-512 kernels (and the SSE and AVX ones of older CPUs) sum in another order; AVX2 is
    # what every x86-64 CPU of the last ten years has.
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # "false" replaces oneDNN's sgemm by Eigen's own kernel inside every convolution.
    "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "true",
    # TensorFlow turns oneDNN's graph rewrites on by itself only on CPUs with AVX512_VNNI, BF16
    # or AMX, where they swap in other convolution and matmul kernels: off, as on every other CPU.
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "KERAS_BACKEND": "tensorflow",  # the one the stages are written for, whatever ~/.keras/keras.json says
}
# "--tf_xla_auto_jit=2" in it compiles the training step with XLA, which fuses and reorders the sums.
UNSET_ENVIRONMENT = ("TF_XLA_FLAGS",)
os.environ.update(PINNED_ENVIRONMENT)
for _name in UNSET_ENVIRONMENT:
    os.environ.pop(_name, None)


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

# Keras's defaults, whatever a user's keras.json (in ~/.keras or $KERAS_HOME) sets: they change
# the layers' dtype and layout and the loss's clipping.
keras.config.set_floatx("float32")
keras.config.set_epsilon(1e-7)
keras.config.set_image_data_format("channels_last")


def pin_threads(threads: int) -> None:
    """Run every op on `threads` intra-op threads, however many cores the process may use.

    Eigen and oneDNN cut each sum into one part per thread, so the thread count, not the
    cores, decides the bits: two threads on one core give the two-core bytes. 0 leaves
    TensorFlow its default, one thread per visible core: fastest, but the bits then depend
    on the host. Call before the first op; TensorFlow fixes the count then.
    """
    if threads:
        # The environment's TF_NUM_INTRAOP_THREADS and OMP_NUM_THREADS yield to this setting.
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            raise PipelineError(f"TensorFlow already runs on {tf.config.threading.get_intra_op_parallelism_threads()}"
                                f" threads in this process, not {threads}; start a new process") from None
    with _quiet_stderr():
        tf.constant(0)  # the runtime's own start-up notes come with its first op


__all__ = ["keras", "pin_threads", "tf"]
