"""nncli: small fully connected neural networks in plain NumPy, driven by YAML configs."""

__version__ = "0.1.0"
