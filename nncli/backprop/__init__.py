"""Backpropagation made visible: the notes' elementary gates, worked circuits, a gate-by-gate trace of a network,
and its computational graph.
"""
