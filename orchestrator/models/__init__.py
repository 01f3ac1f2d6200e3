"""Validated input models: inventory, appspec and deployment configs (pydantic v2)."""
