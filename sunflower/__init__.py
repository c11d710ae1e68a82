"""Sunflower: the backend of a district's digital-governance centre."""
