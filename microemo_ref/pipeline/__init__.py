"""Uses of the model: clip -> evidence -> tokens (and, later, -> answer)."""
