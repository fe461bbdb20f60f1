"""Enrichment: intel matching, YARA, constituency and cross-entity correlation."""
