"""Test harnesses: stand-ins for what cannot run here (the Slicer application)."""
