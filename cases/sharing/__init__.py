"""Sharing: the TLP policy, MISP events, STIX 2.1 bundles and Markdown reports of cases."""
