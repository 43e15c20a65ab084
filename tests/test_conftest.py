"""tests/conftest.py: what the test session promises the tests' servers."""

import subprocess
import sys
import textwrap

from tests.e2e.conftest import REPO


def test_a_workers_stop_finishes_even_when_it_outlasts_xdists_grace(tmp_path):
    # xdist ends a worker EXIT_TIMEOUT seconds (10) after the worker reports itself finished. The
    # inner session shortens that to 1 s, and its worker registers a stop that takes 3 s.
    stopped = tmp_path / "stopped"
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import time
        from pathlib import Path

        import xdist.workermanage

        from tests.conftest import pytest_sessionfinish, stop_when_the_session_ends

        xdist.workermanage.NodeManager.EXIT_TIMEOUT = 1


        def pytest_configure(config):
            if hasattr(config, "workerinput"):
                def stop():
                    time.sleep(3)
                    Path({str(stopped)!r}).write_text("stopped")
                stop_when_the_session_ends(config, stop)
    """))
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's: no addopts
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "1", "-p", "no:randomly", "-p", "no:cacheprovider",
         str(tmp_path)],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert stopped.exists()
