"""The kernel: shared vocabulary, taxonomies, errors, config and plugin discovery. No I/O."""
