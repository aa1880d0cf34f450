"""Where samples come from: built-in generators and bundled sets, file readers, splits, label mapping,
standardization.
"""
