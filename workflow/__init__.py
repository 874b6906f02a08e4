"""The ESMS numérique workflow engine: persistence, clock, firing events, sweeps, daemon and CLI.

Kept free of imports so that `esms --help` starts fast; import the submodules you need.
"""
