"""Small helpers shared by every layer of the package (no torch models, no workflows)."""
