"""NNO: a self-hostable platform-orchestration control plane."""

__version__ = "0.1.0"
