"""The command line: click commands and rich rendering. The only layer that prints."""
