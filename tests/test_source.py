"""The source tree itself: no dead code, no paths of one machine.

Dead code here is a module-level function, class or UPPER_CASE constant, or a
method or property, that nothing reads: no name, attribute or import in the
code, scripts, tests or benchmarks, no identifier-like string (an RQ job by
dotted name, an endpoint, a getattr), no word of a template or script. Prose
(docstrings, comments, messages) does not count as a use.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Methods that a framework calls by name (peewee fields, urllib handlers, prometheus-client collectors).
FRAMEWORK_HOOKS = {"db_value", "python_value", "http_open", "https_open", "collect"}
# models.py names the values of a column in constants its comments point to
# ("one of RUN_STATUSES"): a vocabulary, read by people.
VOCABULARY = ROOT / "webapp" / "models.py"
IDENTIFIER_LIKE = re.compile(r"[\w.:/-]+")


def _code_files():
    return [p for p in (ROOT / "webapp").rglob("*.py") if "migrations" not in p.parts]


def _python_files():
    return (
        _code_files()
        + list((ROOT / "tests").rglob("*.py"))
        + list((ROOT / "bench").rglob("*.py"))
        + [ROOT / "app.py", ROOT / "worker.py"]
    )


def _docstrings(tree):
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _uses(tree):
    """The words a module reads (not those it only assigns or says in prose)."""
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.alias):
            yield from re.findall(r"\w+", node.name)
        elif isinstance(node, ast.keyword) and node.arg:
            yield node.arg
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and IDENTIFIER_LIKE.fullmatch(node.value)
        ):
            yield from re.findall(r"\w+", node.value)


def _used_words():
    used = set()
    for path in _python_files():
        used.update(_uses(ast.parse(path.read_text(encoding="utf-8"))))
    for path in list((ROOT / "templates").rglob("*.html")) + list((ROOT / "static").rglob("*.js")):
        used.update(re.findall(r"\w+", path.read_text(encoding="utf-8")))
    return used


def _definitions(path, tree):
    """(line, name) of what a module defines for others: top-level functions, classes and
    constants, and the plain methods and properties of its classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.decorator_list:
            yield node.lineno, node.name
        if isinstance(node, ast.Assign) and path != VOCABULARY:
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    yield node.lineno, target.id
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                plain = all(
                    isinstance(d, ast.Name) and d.id in ("property", "staticmethod", "classmethod")
                    for d in getattr(item, "decorator_list", [])
                )
                if (
                    isinstance(item, ast.FunctionDef)
                    and plain
                    and not item.name.startswith("__")
                    and item.name not in FRAMEWORK_HOOKS
                ):
                    yield item.lineno, item.name


def test_no_dead_code():
    used = _used_words()
    dead = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in _code_files()
        for line, name in _definitions(path, ast.parse(path.read_text(encoding="utf-8")))
        if name not in used
    ]
    assert dead == []


def test_no_absolute_paths_of_one_machine():
    # The spec lives beside the repository (shared/spec/): cite it relatively, as every clone can read it.
    absolute = re.compile(r"(?<![\w.])/(?:work|shared)/")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _python_files()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if absolute.search(line)
    ]
    assert found == []
