"""One module per TAO route.

Only the PyTorch route (``pyt``) lives here so far; the TF1 routes (TAO 3.x and 5.0) are
still spread over tao.py, spec.py and steps/ (issue 18, item 2).
"""
