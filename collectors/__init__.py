"""Collectors: sources fetch bytes into RawReports; parsers turn them into records."""
