"""scratchd: a CI daemon that turns commits into FROM-scratch images."""

__version__ = "0.1.0"
