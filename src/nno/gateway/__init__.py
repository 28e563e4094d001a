"""The Gateway: NNO's single public entry point."""
