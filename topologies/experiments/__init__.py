"""The experiments `beaver experiment run NAME` runs, one module each.

A module has DESCRIPTION, add_arguments(parser) and run(args, results),
which writes its CSV, JSON and PNG into results and returns the rows of the
summary table the command prints.
"""
import importlib

NAMES = ("figure5", "clean", "scale", "fig10", "fig11", "fig12", "fig14", "fig14tcp",
         "figure5tcp", "table3", "invariants", "inflight", "deadlock", "gc", "recovery")


def load(name: str):
    return importlib.import_module(f".{name}", __name__)
