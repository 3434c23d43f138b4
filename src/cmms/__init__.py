"""halo-cmms: the Halo Cross-Media Measurement System in Python."""

__version__ = "0.1.0"
