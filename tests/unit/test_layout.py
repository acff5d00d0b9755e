"""The house rules of the library's code, checked: modules a newcomer can read in one sitting, functions that fit
on a screen, and no module reaching into another's private names (the layer map itself is .importlinter's)."""

import ast
import pathlib

import lakehouse_ops

# The package as imported (a checkout, or an installed wheel when the tests run against one).
PACKAGE = pathlib.Path(lakehouse_ops.__file__).resolve().parent
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_is_found():
    assert len(_modules()) > 50 and (PACKAGE / "cli" / "base.py").exists()


def test_no_module_over_300_lines():
    long = [
        "%s: %d" % (p.relative_to(PACKAGE), n)
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, "modules over %d lines: %s" % (MAX_MODULE_LINES, ", ".join(long))


def test_no_function_over_60_lines():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append("%s:%d %s (%d lines)" % (path.relative_to(PACKAGE), node.lineno, node.name, length))
    assert not long, "functions over %d lines: %s" % (MAX_FUNCTION_LINES, ", ".join(long))


def test_no_private_name_imported_across_modules():
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lakehouse_ops"):
                found += [
                    "%s imports %s.%s" % (path.relative_to(PACKAGE), node.module, alias.name)
                    for alias in node.names
                    if alias.name.startswith("_") and alias.name != "__version__"
                ]
    assert not found, "; ".join(found)


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The checks above can fail: a long function and a private import are found in a sample."""
    sample = "from lakehouse_ops.x import _hidden\n\ndef f():\n" + "    x = 1\n" * 70
    tree = ast.parse(sample)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert functions[0].end_lineno - functions[0].lineno + 1 > MAX_FUNCTION_LINES
    imports = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
    assert imports == ["_hidden"]
