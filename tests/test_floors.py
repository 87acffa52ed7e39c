"""The floors of architecture.md, enforced: each module imports only from floors below it, or
from its own package; floor-3 and floor-4 packages never import each other sideways."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Longest prefix wins. Floor 0 is the package root and its leaf modules.
FLOORS = {
    "lomit_fast": 0, "lomit_fast.config": 0, "lomit_fast.io": 0, "lomit_fast.optional": 0,
    "lomit_fast.version": 0,
    "lomit_fast.ops.reference": 1, "lomit_fast.kernels": 1, "lomit_fast._C": 1,
    "lomit_fast.ops": 2,
    "lomit_fast.models": 3, "lomit_fast.data": 3,
    "lomit_fast.engine": 4, "lomit_fast.export": 4, "lomit_fast.train": 4, "lomit_fast.eval": 4,
    "lomit_fast.cli": 5,
}


def floor_of(module: str) -> tuple[int, str]:
    """(floor, the FLOORS prefix that placed it) of a lomit_fast module."""
    prefix = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len)
    return FLOORS[prefix], prefix


def modules():
    for path in sorted((ROOT / "lomit_fast").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path, parts[-1] == "__init__"
    for path in sorted((ROOT / "kernels").glob("*.py")):
        yield f"lomit_fast.kernels.{path.stem}", path, False


def imports(module: str, path: Path, is_package: bool):
    """Every lomit_fast module `module` imports, at any depth of its code."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("lomit_fast"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("lomit_fast"):
                # `from .. import ops` imports the submodule lomit_fast.ops
                yield from (f"{base}.{a.name}" if f"{base}.{a.name}" in KNOWN else base
                            for a in node.names)


KNOWN = {m for m, _, _ in modules()} | {"lomit_fast._C"}


def test_every_import_goes_down_a_floor_or_stays_in_its_package():
    wrong = []
    for module, path, is_package in modules():
        floor, home = floor_of(module)
        for target in imports(module, path, is_package):
            target_floor, target_home = floor_of(target)
            sideways = target_floor == floor and target_home != home and floor in (3, 4)
            if target_floor > floor or sideways:
                wrong.append(f"{module} (floor {floor}) imports {target} (floor {target_floor})")
    assert not wrong, "\n".join(wrong)


def test_every_module_has_a_floor():
    assert all(floor_of(m) for m, _, _ in modules())


def test_importing_the_spec_builds_nothing_above_it():
    import subprocess
    import sys
    code = ("import sys, lomit_fast.ops.reference; "
            "print(sorted(m for m in sys.modules if m.startswith('lomit_fast')))")
    loaded = eval(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, cwd=ROOT).stdout)
    assert not [m for m in loaded if floor_of(m)[0] > 2], loaded
    assert "lomit_fast._C" not in loaded  # the extension is probed lazily
