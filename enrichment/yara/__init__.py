"""YARA scanning: safe compilation of rule folders, pooled scanning, optional yara-x engine."""
