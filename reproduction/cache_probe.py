"""An experiment, not part of the pipeline: do the cache sizes Eigen reads from the CPU move
the bits of a training run under the project's pin?

    python -m reproduction.cache_probe                      # this host's sizes
    python -m reproduction.cache_probe 49152 2097152 33554432   # L1 L2 L3 of another CPU, in bytes

Eigen cuts each matrix product of a convolution into blocks whose depth it derives from the
L1 and L2 sizes, read once per process from the CPU (CPUID). TensorFlow keeps that reading
in private copies inside libtensorflow_cc.so.2, which no setting, variable or API reaches;
its framework library exports only a copy its kernels do not use. So this probe finds the
private copies by their contents (the sizes its own reading gives) after a first convolution
and overwrites them, as if the process ran on a CPU with the given caches, before training
conv2's layers for one epoch on 4,096 generated images. It prints the weights' hash:
reproduction/README.md has what it gave.
"""

import ctypes
import hashlib
import re
import struct
import sys
from pathlib import Path

import numpy as np

from reproduction.host import eigen_cache_sizes
from stages.common.tensorflow import keras, pin_threads, tf

LIBRARY = "libtensorflow_cc.so.2"


def private_copies(sizes: list[int]) -> list[int]:
    """Addresses in the library's writable memory that hold `sizes` as three 64-bit integers."""
    pattern = re.escape(struct.pack("<3q", *sizes))
    maps = Path("/proc/self/maps").read_text().splitlines()
    found = []
    for previous, line in zip(["", *maps], maps):
        fields = line.split()
        # The library's own writable pages, and the anonymous ones right after them (its .bss).
        ours = LIBRARY in line or (LIBRARY in previous and len(fields) == 5)
        if ours and fields[1].startswith("rw"):
            start, end = (int(bound, 16) for bound in fields[0].split("-"))
            found += [start + match.start() for match in re.finditer(pattern, ctypes.string_at(start, end - start))]
    return found


def main(sizes: list[int] | None) -> None:
    pin_threads(2)
    keras.utils.set_random_seed(1)
    tf.config.experimental.enable_op_determinism()
    # A first convolution and its gradient make Eigen read the caches into its copies.
    tf.raw_ops.Conv2DBackpropFilter(input=tf.ones((2, 8, 8, 3)), filter_sizes=[3, 3, 3, 4],
                                    out_backprop=tf.ones((2, 6, 6, 4)), strides=[1, 1, 1, 1], padding="VALID")
    read = eigen_cache_sizes(tf)
    copies = private_copies(read)
    if sizes:
        for address in copies:
            ctypes.memmove(address, struct.pack("<3q", *sizes), 24)
    rng = np.random.default_rng(0)
    images, labels = rng.random((4096, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 4096)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, batch_size=128, epochs=1, verbose=0)
    weights = hashlib.sha256(b"".join(weight.tobytes() for weight in model.get_weights())).hexdigest()[:8]
    print(f"Eigen read {read}; {len(copies)} private copies; ran as {sizes or read}: weights {weights}")


if __name__ == "__main__":
    main([int(size) for size in sys.argv[1:4]] or None)
