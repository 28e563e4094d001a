"""The `nno` command."""
