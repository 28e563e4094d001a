"""Pieces every NNO service reuses: config, ids, errors, database, bindings, caches, logging."""
