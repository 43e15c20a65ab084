"""Which project source files a stage runs: its module and every project module it imports.

Both pipelines need this list: the Snakefile computes its rules' code inputs with
`code_files`, dvc.yaml lists the same files by hand, and tests/test_wiring.py checks it.
"""

import ast
import functools
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "stages"


def code_files(module: str) -> list[str]:
    """Repo-relative paths of `module` and of the project modules it imports, directly or not."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending += _project_imports(_path(name))
    return sorted(str(_path(name).relative_to(ROOT)) for name in seen)


def _project_imports(path: Path) -> list[str]:
    found = _imported_names(path.read_text(), str(path))
    return [name for name in found if name.split(".")[0] == PACKAGE and _path(name).is_file()]


@functools.cache  # by content: the Snakefile asks for every rule's files, and they share most modules
def _imported_names(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from stages.common import cli` imports the module stages.common.cli
            found += [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
    return found


def _path(module: str) -> Path:
    # Package __init__ files are not counted: they hold only a docstring (tests/test_code.py checks).
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def code_digest(module: str) -> str:
    """A hash of the content of `module`'s code files: it changes exactly when one of them is edited."""
    digest = hashlib.sha256()
    for path in code_files(module):
        digest.update(path.encode() + b"\0" + (ROOT / path).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
