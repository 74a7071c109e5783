"""The layers of docs/architecture.md hold: imports go down, the model's closure stays flat."""

from .architecture import LAYERS, MODEL_CLOSURE, MODEL_ENTRY_POINTS, import_graph, layer_of, modules, unit_of


def test_every_module_has_a_layer():
    units = {unit_of(name) for name in modules()}
    placed = {unit for layer in LAYERS.values() for unit in layer}
    assert units == placed  # a new module or subpackage is given its layer (and a line in the docs)


def test_modules_import_only_their_own_layer_or_lower_ones():
    upward = [
        (module, target)
        for module, targets in import_graph().items()
        for target in targets
        if layer_of(unit_of(target)) > layer_of(unit_of(module))
    ]
    assert upward == []


def test_the_model_files_import_only_each_other_at_the_package_top():
    """save_pretrained copies these files, and their relative imports, into a checkpoint for
    trust_remote_code: the closure must stay flat (no subpackage) and free of training, hub and data code."""
    graph = import_graph()
    closure, frontier = set(), list(MODEL_ENTRY_POINTS)
    while frontier:
        module = frontier.pop()
        if module not in closure:
            closure.add(module)
            frontier.extend(graph[module])
    assert closure <= set(MODEL_CLOSURE), sorted(closure - set(MODEL_CLOSURE))
    assert all("." not in module for module in closure)


def test_the_graph_sees_imports_of_every_kind():
    graph = import_graph()
    assert "reaction_diffusion" in graph["modeling_rdmf"]  # from .x import y
    assert "metrics.inputs" in graph["metrics.qvhighlights"]  # from transformers_rdmf.metrics.x import y
    assert "modeling_rdmf" in graph["pipeline_rdmf"]  # a lazy import inside a function
    assert "training.arguments" in graph["training.loop"]  # from .arguments import ..., in a subpackage
    assert "data.features" in graph["commands.predict"]  # from ..data.features import ...


def test_no_module_outside_the_model_files_is_a_catch_all():
    """About 400 lines at most outside the model's own files (which follow transformers' one-file layout)."""
    model_files = set(LAYERS["the model (the trust_remote_code closure, flat)"])
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > 400 and name not in model_files} == {}
