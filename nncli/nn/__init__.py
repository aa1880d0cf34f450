"""The network as the lecture writes it: gates (layers and activations) with forward/backward, losses,
regularization, initialization, metrics, the flat-buffer Network, and the plain reference math it is tested
against.
"""
