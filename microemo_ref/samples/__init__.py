"""Generated sample dialogues with full ground truth (faces animated, speech synthesised).

Real EMER and micro-expression data may not be redistributed, so the project makes its own.
This package sits above perception (it uses FaceMesh to place the motion), never below it.
"""
