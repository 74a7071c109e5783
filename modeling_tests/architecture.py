"""The package's layers, and its import graph read from the source (``ast``, nothing imported).

`modeling_tests/test_architecture.py` checks the rules against the graph; `scripts/plot_architecture.py`
draws it for ``docs/architecture.md``. A module imports only modules of its own layer or a lower one.
"""

import ast
from pathlib import Path

PACKAGE = "transformers_rdmf"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE

# Lowest first. A name is a top-level module or a subpackage (all its modules).
LAYERS = {
    "facts and files (standard library, numpy)": ("presets", "dataset_specs", "atomic", "errors", "metrics"),
    "the model (the trust_remote_code closure, flat)": (
        "configuration_rdmf",
        "modeling_rdmf",
        "reaction_diffusion",
        "loss_rdmf",
        "span_utils",
        "processing_rdmf",
        "video_processing_rdmf",
        "post_processing",
        "long_video",
        "pipeline_rdmf",
    ),
    "data and features": ("data", "feature_manifest", "feature_extraction"),
    "applications": ("auto", "checkpoint_loading", "training", "hub", "commands", "cli", "app", "__init__"),
}
# The files save_pretrained copies into a checkpoint for trust_remote_code, and what they may import.
MODEL_ENTRY_POINTS = (
    "configuration_rdmf",
    "modeling_rdmf",
    "processing_rdmf",
    "video_processing_rdmf",
    "pipeline_rdmf",
)
MODEL_CLOSURE = (*LAYERS["the model (the trust_remote_code closure, flat)"], "presets")


def unit_of(module: str) -> str:
    """The layer entry a dotted module name (``training.loop``) belongs to (``training``)."""
    return module.split(".")[0]


def layer_of(unit: str) -> int:
    for rank, units in enumerate(LAYERS.values()):
        if unit in units:
            return rank
    raise KeyError(f"{unit!r} is in no layer of modeling_tests/architecture.py")


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name below it (``training.loop``; ``__init__`` for the top)."""
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        if "evaluate_modules" in parts:
            continue  # loaded by `evaluate`, from their files
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """The package modules that module ``name`` imports (at any depth in its code, lazy ones included)."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == PACKAGE:
                target = node.module.split(".")[1:]
            else:
                continue
            names = [alias.name for alias in node.names]
            candidates = [".".join([*target, n]) for n in names] + [".".join(target)]
            found.update(c for c in candidates if c)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE and "." in alias.name:
                    found.add(alias.name.split(".", 1)[1])
    known = modules()
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    """``{module: the package modules it imports}`` for every module."""
    return {name: imports_of(name, path) for name, path in modules().items()}
