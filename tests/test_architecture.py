"""The architecture, checked on every `make test`: import-linter's contracts
(pyproject.toml, [tool.importlinter]), no module importing another's private
names, ruff's lint and format rules (pyproject.toml, [tool.ruff]), and what
the app loads when it starts."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*args, cwd=ROOT, env=None):
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, env=env)


def test_import_contracts_hold():
    result = run("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "violation, contract, reported",
    [
        # the engine reaching for Flask (it is a library every part calls)
        ("engine/compiler.py", "The engine imports neither Flask", "webapp.engine.compiler -> flask"),
        # one blueprint taking another's view helpers
        (
            "events/views.py",
            "Views of one domain do not import another's views",
            "webapp.events.views -> webapp.segments.views",
        ),
    ],
)
def test_import_contracts_fail_when_broken(tmp_path, violation, contract, reported):
    """A copy of the package with one violation added: the contracts say so."""
    shutil.copytree(ROOT / "webapp", tmp_path / "webapp", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "webapp" / violation
    line = (
        "import flask  # noqa\n"
        if violation.startswith("engine")
        else "from ..segments import views as _other  # noqa\n"
    )
    target.write_text(line + target.read_text())
    env = {"PYTHONPATH": str(tmp_path), "PATH": str(BIN)}
    result = run("lint-imports", "--no-cache", cwd=tmp_path, env=env)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout and reported in result.stdout


def private_imports(package=ROOT / "webapp"):
    """(file, line, name) of each `from X import _name`: a private name of another module."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                found += [
                    (str(path.relative_to(package)), node.lineno, alias.name)
                    for alias in node.names
                    if alias.name.startswith("_") and alias.name != "_" and not alias.name.startswith("__")
                ]
    return found


def test_no_module_imports_another_modules_private_names():
    assert private_imports() == []


def test_private_import_check_finds_one(tmp_path):
    (tmp_path / "a.py").write_text("from .b import _hidden, public\nfrom . import __version__\nfrom .i18n import _\n")
    assert private_imports(tmp_path) == [("a.py", 1, "_hidden")]


def test_ruff_lint_passes():
    result = run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_holds():
    result = run("ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_app_starts_without_scipys_heavy_modules():
    # scipy.stats, .optimize and .special took about 0.9 s of CPU at every start (each `flask`
    # command, each web process) for pages few open; they load when a fit or an uplift needs them.
    code = (
        "import sys; from webapp import create_app; create_app(); "
        "print(sorted(m for m in ('scipy.stats', 'scipy.optimize', 'scipy.special') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
