"""Performance figures that need no GPU: the roofline cost model (cost.py)."""
