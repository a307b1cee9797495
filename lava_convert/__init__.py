"""lava-convert."""
