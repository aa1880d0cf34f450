"""Numerical gradient checks: centered differences, relative error with a rounding floor, kinks; the built-in suite
over every registered piece.
"""
