"""How orchestrator reaches hosts: the Transport protocol and its SSH implementation."""
