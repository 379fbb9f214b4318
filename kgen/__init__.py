"""kgen: distributed AI kernel generation (PyTorch reference in, verified Triton kernel out)."""

__version__ = "0.1.0"
API_VERSION = "v1"
