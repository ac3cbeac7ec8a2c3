"""The source tree itself: no dead code, no paths of one machine.

Dead code here is a module-level function, class or UPPER_CASE constant, or a
method or property, whose name appears nowhere else: not in the code, the
templates, the scripts, the tests or the benchmarks. (A name used only by its
own definition cannot be called; one used under a string, such as an RQ job
by dotted name or a template attribute, still counts as used.)
"""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Methods that a framework calls by name (peewee fields, urllib handlers).
FRAMEWORK_HOOKS = {"db_value", "python_value", "http_open", "https_open"}


def _code_files():
    return [p for p in (ROOT / "webapp").rglob("*.py") if "migrations" not in p.parts]


def _word_counts():
    files = _code_files() + list((ROOT / "tests").rglob("*.py")) + list((ROOT / "bench").rglob("*.py"))
    files += [ROOT / "app.py", ROOT / "worker.py"]
    files += list((ROOT / "templates").rglob("*.html")) + list((ROOT / "static").rglob("*.js"))
    counts = {}
    for path in files:
        for word in re.findall(r"\w+", path.read_text(encoding="utf-8")):
            counts[word] = counts.get(word, 0) + 1
    return counts


def _definitions(tree):
    """(line, name) of what a module defines for others: top-level functions, classes and
    constants, and the plain methods and properties of its classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.decorator_list:
            yield node.lineno, node.name
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    yield node.lineno, target.id
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                plain = all(isinstance(d, ast.Name) and d.id in ("property", "staticmethod", "classmethod")
                            for d in getattr(item, "decorator_list", []))
                if (isinstance(item, ast.FunctionDef) and plain and not item.name.startswith("__")
                        and item.name not in FRAMEWORK_HOOKS):
                    yield item.lineno, item.name


def test_no_dead_code():
    counts = _word_counts()
    dead = [f"{path.relative_to(ROOT)}:{line} {name}"
            for path in _code_files()
            for line, name in _definitions(ast.parse(path.read_text(encoding="utf-8")))
            if counts.get(name, 0) <= 1]
    assert dead == []


def test_no_absolute_paths_of_one_machine():
    # The spec lives beside the repository (shared/spec/): cite it relatively, as every clone can read it.
    absolute = re.compile(r"(?<![\w.])/(?:work|shared)/")
    files = _code_files() + list((ROOT / "tests").rglob("*.py")) + list((ROOT / "bench").rglob("*.py"))
    found = [f"{path.relative_to(ROOT)}:{n}" for path in files
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if absolute.search(line)]
    assert found == []
