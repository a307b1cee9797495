"""Lava processes and process models of lava-convert.

Lava's compiler imports every module in the directory of a process's module
when it looks for process models, so this package holds only processes and
their models. Import it through :func:`lava_convert.lava.compat.ensure_lava`.
"""
