"""What a host brings to the arithmetic of a training run: its fingerprint.

Three of its parts decide the bits under the project's pin (stages/common/tensorflow.py),
and make up `arithmetic`: the instruction set oneDNN runs (the CPU's best, capped at AVX2),
the cache sizes Eigen reads from the CPU to cut its matrix products into blocks, and
TensorFlow's version. The rest (CPU model, cores, whether TensorFlow would have run oneDNN's
graph rewrites without the pin, Python) is there to tell hosts apart.
"""

import ctypes
import os
import platform
from pathlib import Path
from typing import Any

# oneDNN's instruction sets, weakest first, by the /proc/cpuinfo flags each needs.
ISA_FLAGS = (("SSE41", {"sse4_1"}), ("AVX", {"avx"}), ("AVX2", {"avx2", "fma"}), ("AVX512", {"avx512f", "avx512bw"}))
PINNED_ISA = "AVX2"  # stages/common/tensorflow.py's ONEDNN_MAX_CPU_ISA
# CPUs on which TensorFlow would turn oneDNN's graph rewrites on by itself (pinned off).
ONEDNN_OPTS_FLAGS = {"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}
# Eigen's CacheSizes constructor: what its blocking reads, exported by TensorFlow's framework library.
EIGEN_CACHE_SIZES = "_ZN5Eigen8internal10CacheSizesC2Ev"


def fingerprint(threads: int) -> dict[str, Any]:
    """The host as the arithmetic sees it, for `threads` intra-op threads (the `threads` param)."""
    from stages.common.tensorflow import tf

    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    best = best_isa(flags)
    return {
        "cpu": cpu.get("model name", platform.processor() or platform.machine()),
        "family_model": f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
        "isa": best,
        "onednn_rewrites_unpinned": bool(flags & ONEDNN_OPTS_FLAGS),
        "visible_cores": len(os.sched_getaffinity(0)),
        "caches": _sysfs_caches(),
        "python": platform.python_version(),
        "arithmetic": {
            # A GPU, where TensorFlow sees one, trains instead of the CPU: its kernels decide then.
            "device": ", ".join(gpu.name for gpu in tf.config.list_physical_devices("GPU")) or "CPU",
            "tensorflow": tf.__version__,
            "isa": capped_isa(best),
            "eigen_cache_bytes": eigen_cache_sizes(tf),
            "threads": threads or "one per visible core",
        },
    }


def best_isa(flags: set[str]) -> str:
    """The strongest of oneDNN's instruction sets that `flags` has ("none" off x86)."""
    best = "none"
    for name, needed in ISA_FLAGS:
        if needed <= flags:
            best = name
    return best


def capped_isa(best: str) -> str:
    names = [name for name, _ in ISA_FLAGS]
    if best not in names:
        return best
    return names[min(names.index(best), names.index(PINNED_ISA))]


def eigen_cache_sizes(tf: Any) -> list[int] | None:
    """L1, L2, L3 in bytes, as Eigen reads them from the CPU (its own reading, not /sys's: on
    AMD it takes the L3 for 256 MiB); None where TensorFlow's library does not export it."""
    try:
        library = ctypes.CDLL(str(Path(tf.__file__).parent / "libtensorflow_framework.so.2"))
        construct = getattr(library, EIGEN_CACHE_SIZES)
    except (OSError, AttributeError):
        return None
    sizes = (ctypes.c_int64 * 3)()
    construct(ctypes.byref(sizes))
    return list(sizes)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo; {} where there is none."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            text = cpuinfo.read(65536)  # the first processor's block is at its start
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _sysfs_caches() -> str:
    """The first core's caches as Linux lists them, e.g. "L1d 32K, L1i 32K, L2 512K, L3 32768K"."""
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches.append(f"L{level}{suffix} {size}")
    return ", ".join(caches) or "unknown"


def same_arithmetic(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two fingerprints' `arithmetic` parts agree: then the pin gives the same bits."""
    return one.get("arithmetic") == other.get("arithmetic")
