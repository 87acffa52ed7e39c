"""Triton kernels of lomit_fast, installed as lomit_fast.kernels (one module per op stem).

Importing this package needs triton; lomit_fast itself never requires it."""
