"""The CLI Service: one configuration repository per platform, and the console built from it."""
