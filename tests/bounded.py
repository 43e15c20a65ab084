"""Run a stage as a user would and measure what its reading cost: time and peak memory.

The stage runs under a time limit and an address-space limit, so that a read that never
ends (a device, a FIFO, a bomb) fails the test instead of hanging it or eating the machine;
`time_limit` does the same for a read in the test's own process.
"""

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

GiB = 1 << 30

# Started from a small process of its own: a child's peak memory (ru_maxrss) counts the
# memory of the process it was forked from, and pytest's, with TensorFlow loaded, is large.
_MEASURE = """
import json, resource, subprocess, sys, time
memory, timeout = int(sys.argv[1]), float(sys.argv[2])
started = time.monotonic()
try:
    code = subprocess.run(sys.argv[3:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=timeout,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (memory, memory))).returncode
except subprocess.TimeoutExpired:
    code = None
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"returncode": code, "seconds": time.monotonic() - started, "peak_mb": peak_mb}))
"""


@dataclass
class Run:
    returncode: int | None  # None: killed at the time limit
    stderr: str
    seconds: float
    peak_mb: float


def run_stage(module: str, *args: str, timeout: float = 60, memory: int = 4 * GiB) -> Run:
    """`python -m <module> <args>`, killed after `timeout` seconds or past `memory` bytes of address space."""
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(memory), str(timeout), sys.executable, "-m", module,
                             *args], capture_output=True, text=True, timeout=timeout + 60)
    return Run(stderr=result.stderr, **json.loads(result.stdout))


def one_error_line(run: Run) -> str:
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), run
    return lines[0]


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in this process after `seconds`, even from inside a blocked open() or read()."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
