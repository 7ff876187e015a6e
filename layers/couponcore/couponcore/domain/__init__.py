"""The coupon rules in plain Python: no I/O, no framework."""
