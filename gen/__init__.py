"""Configs, the design registry, Verilog generation, synthesis and the command line."""

__version__ = "0.1.0"
