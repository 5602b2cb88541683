"""One self-contained HTML model report: what a model-risk reviewer reads and signs.

:func:`report` takes the computed artefacts (a fitted model that carries its
feature builder, the event data, optionally outreach decisions) and rebuilds
the scoring grid and target exactly as ``riskscore train`` did; every figure
says which sample it comes from (development, hold-out, out of time, read from
the model's manifest).
"""

from riskscore.report.build import report

__all__ = ["report"]
