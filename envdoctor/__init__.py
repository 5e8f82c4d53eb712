"""envdoctor: an environment doctor for XTuner / transformers / torch / CUDA stacks."""

__version__ = "0.1.0"
