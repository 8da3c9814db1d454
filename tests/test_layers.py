"""The house rules of DEVELOPERS.md, checked on the source: handlers -> services ->
the credential service. A new import that breaks a layer fails here, not in review."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "af_lab"
# The tornado layer: the extension glue and the thin handlers (af_lab/__init__.py only names the app).
WEB_LAYER = {"app.py", "handlers.py"}


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against its package
    (``from ..handlers import X`` in af_lab/mounts/service.py is ``af_lab.handlers``
    and ``af_lab.handlers.X``: X may be a module)."""
    package = [root.name, *path.relative_to(root).parent.parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def is_web(module: str) -> bool:
    """af-lab's tornado layer: the extension glue and every handlers module."""
    parts = module.split(".")
    return parts[0] == "af_lab" and (parts[-1] in ("handlers", "app") or parts[1:2] in (["app"], ["handlers"]))


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


def test_only_the_rucio_package_uses_rucio_clients():
    """rucio-clients (its exceptions, its RSE upload layer) stays behind the one gateway."""
    offenders = [rel for rel, imports in modules() if uses(imports, "rucio") and not rel.startswith("rucio/")]
    assert offenders == []


def test_the_product_never_imports_the_demo_facility():
    offenders = [rel for rel, imports in modules() if uses(imports, "af_facility")]
    assert offenders == []


def test_services_import_no_handlers():
    offenders = [(rel, sorted(m for m in imports if is_web(m))) for rel, imports in modules()
                 if Path(rel).name not in WEB_LAYER and rel != "__init__.py" and any(is_web(m) for m in imports)]
    assert offenders == []


def test_the_check_sees_a_relative_violation(tmp_path):
    root = tmp_path / "af_lab"
    (root / "mounts").mkdir(parents=True)
    bad = root / "mounts" / "service.py"
    bad.write_text("from ..handlers import AFLabHandler\nfrom . import handlers\nfrom ..vault import credentials\n")
    found = imported_modules(bad, root)
    assert {"af_lab.handlers", "af_lab.mounts.handlers", "af_lab.vault.credentials"} <= found
    assert any(is_web(m) for m in found)
    fine = root / "mounts" / "store.py"
    fine.write_text("from ..errors import BadRequest\nfrom .cache import Cache\n")
    assert not any(is_web(m) for m in imported_modules(fine, root))


def test_the_check_sees_a_violation(tmp_path):
    bad = tmp_path / "service.py"
    bad.write_text("def f():\n    from tornado.ioloop import IOLoop\n    import hvac.api\n")
    assert uses(imported_modules(bad, tmp_path), "tornado") and uses(imported_modules(bad, tmp_path), "hvac")
