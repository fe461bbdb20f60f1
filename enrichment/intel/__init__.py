"""Threat intelligence: the indicator store, its loaders, MISP sync and the matcher."""
