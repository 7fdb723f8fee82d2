"""The Workbench facade (`facade.Workbench`), built from one part per concern."""

from .facade import Workbench, open_workbench
from .overrides import SweepOverrides

__all__ = ["SweepOverrides", "Workbench", "open_workbench"]
