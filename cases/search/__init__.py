"""Search over alerts and cases: the query syntax, SQLite FTS5 and Elasticsearch backends."""
