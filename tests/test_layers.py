"""The package's layering (docs/design.md, "Layout"): every module imports only from its own layer or below."""
import ast
from pathlib import Path

import microemo_ref

PACKAGE = Path(microemo_ref.__file__).parent
LAYER = {  # top-level module or sub-package -> layer (higher may import lower, never the reverse)
    "config": 0, "io": 0, "lexicon": 0, "metrics": 0, "notebook_tools": 0,
    "face": 1, "audio": 1, "text": 1,
    "model": 2,
    "pipeline": 3, "samples": 3,
    "viz": 4, "diagram": 4,
    "cli": 5, "__main__": 5, "__init__": 5,
}


def part_of(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("microemo_ref."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("microemo_ref.")}
    return found


def test_every_module_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert parts <= set(LAYER), parts - set(LAYER)


def test_imports_point_down():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for target in imports(path):
            if LAYER[part_of(target)] > LAYER[here]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert not wrong, "\n".join(wrong)
