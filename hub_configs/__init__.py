"""The named presets (one JSON file each), installed as ``transformers_rdmf.hub_configs``.

Read them through :mod:`transformers_rdmf.presets`.
"""
