"""Foundations every other layer may import: statistics of published numbers, and (as they move
here) precision, validation, trajectories, I/O and progress."""
