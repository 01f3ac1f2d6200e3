"""The deployment engine: the fleet loop and one host's lifecycle. Emits events, never prints."""
