"""Wire formats, one module per dialect: pure functions over dicts and bytes, no I/O."""
