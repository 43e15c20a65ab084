"""Run a module or script as `python -m <module>` / `python <script>` would: in a new process, or in this one.

The two give the same CompletedProcess (exit status, stdout, stderr). In this process the
run skips the interpreter's start-up and TensorFlow's import, which is most of a stage's
time on tiny data; a new process also checks what only a process shows: TensorFlow's
start-up notes kept off stderr, the exit status the interpreter itself gives. Tests take
the `run_module` fixture (tests/conftest.py): in this process, and, for one test per command
line (marked `also_as_process`), in a new one as well, in the e2e tier.
"""

import contextlib
import io
import os
import runpy
import signal
import subprocess
import sys
import traceback
import warnings
from pathlib import Path


def run_process(target: str, *args: str, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m <target> <args>`, or `python <target> <args>` for a .py file."""
    command = [sys.executable, target] if target.endswith(".py") else [sys.executable, "-m", target]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


class RunTimeout(BaseException):
    """A run in this process went on past its timeout (a BaseException, so that no stage's handler takes it)."""


def run_in_process(target: str, *args: str, env: dict[str, str] | None = None,
                   timeout: float = 300) -> subprocess.CompletedProcess:
    """The same run in this process: the module's code executed afresh as `__main__`, under this
    process's current directory, with `env` added to the environment for the run's length.

    As the interpreter does, an exception that escapes is printed as a traceback on stderr with
    exit status 1, and SystemExit gives the status. A run past `timeout` seconds raises RunTimeout,
    as subprocess.run raises TimeoutExpired. What the run changes in the process (sys.argv, sys.path,
    the environment, the SIGTERM, SIGINT and SIGALRM handlers) is put back afterwards."""
    def expire(signum: int, frame: object) -> None:
        raise RunTimeout(f"{target} still running after {timeout} s")

    stdout, stderr = io.StringIO(), io.StringIO()
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    saved_handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    saved_sigalrm = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    saved_env = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    sys.argv = [str(Path(target).resolve()) if target.endswith(".py") else target, *args]
    status = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            # runpy warns that a module run as __main__ was imported before: tests import them too.
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")
            try:
                if target.endswith(".py"):
                    runpy.run_path(target, run_name="__main__")
                else:
                    runpy.run_module(target, run_name="__main__", alter_sys=False)
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if exit_.code is not None and not isinstance(exit_.code, int):
                    print(exit_.code, file=sys.stderr)
            except Exception:
                traceback.print_exc()
                status = 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, saved_sigalrm)
        sys.argv, sys.path[:] = saved_argv, saved_path
        for signum, handler in saved_handlers.items():
            signal.signal(signum, handler)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess([target, *args], status, stdout.getvalue(), stderr.getvalue())
