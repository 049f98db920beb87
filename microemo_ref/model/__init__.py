"""The MicroEmo model, one concept per module."""
