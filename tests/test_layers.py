"""The house rules of DEVELOPERS.md, checked on the source: handlers -> services ->
the credential service. A new import that breaks a layer fails here, not in review."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "af_lab"
# The tornado layer: the extension glue and the thin handlers.
WEB_LAYER = {"app.py", "handlers.py"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules() -> list[tuple[str, set[str]]]:
    found = [(str(p.relative_to(PACKAGE)), imported_modules(p)) for p in sorted(PACKAGE.rglob("*.py"))]
    assert len(found) > 20, "the package was not found"
    return found


def uses(imports: set[str], top: str) -> bool:
    return any(name == top or name.startswith(top + ".") for name in imports)


def test_services_import_no_tornado():
    offenders = [rel for rel, imports in modules() if Path(rel).name not in WEB_LAYER and uses(imports, "tornado")]
    assert offenders == []


def test_only_the_credential_service_touches_vault():
    offenders = [rel for rel, imports in modules() if uses(imports, "hvac") and rel != "vault/credentials.py"]
    assert offenders == []


def test_the_product_never_imports_the_demo_facility():
    offenders = [rel for rel, imports in modules() if uses(imports, "af_facility")]
    assert offenders == []


def test_the_check_sees_a_violation(tmp_path):
    bad = tmp_path / "service.py"
    bad.write_text("def f():\n    from tornado.ioloop import IOLoop\n    import hvac.api\n")
    assert uses(imported_modules(bad), "tornado") and uses(imported_modules(bad), "hvac")
