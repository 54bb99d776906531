"""The package's layers: ``data/`` never imports ``engine/`` or ``tools/``, and ``engine/`` never imports ``tools/``
(``files.py``, ``errors.py`` and ``config.py`` are the ground floor everyone may use)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "imagenet_trainer"
FORBIDDEN = {"data": ("engine", "tools", "cli"), "engine": ("tools", "cli"), "models": ("engine", "tools", "cli", "data")}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_one_above_it(layer):
    wrong = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "imagenet_trainer" and len(parts) > 1 and parts[1] in FORBIDDEN[layer]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not wrong, "; ".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from imagenet_trainer.engine.run import train\n")
    assert "imagenet_trainer.engine.run" in _imports(f)
