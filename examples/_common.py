"""Shared by the examples: ``--quick`` (used by the tests) shrinks every run."""
import sys

QUICK = "--quick" in sys.argv
