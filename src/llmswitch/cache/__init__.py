"""Response caching: the exact cache and, in ``cache.semantic``, the semantic index."""
