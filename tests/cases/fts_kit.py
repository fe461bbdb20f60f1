"""The alert index checked against its content: shared by the FTS tests."""

from __future__ import annotations

from sqlalchemy import select

from cases.search.fts_indexer import ALERT_COLUMNS, watermark
from cases.store.tables import alerts
from pukara.wiring import Services


def check_integrity(built: Services) -> None:
    """FTS5's own structure check, then the index against a fresh FTS5 table of the rows up
    to the watermark: the same terms at each position of each row (``fts5vocab``), the same
    row sizes and the same totals (row and token counts, which a ``'delete'`` of a row never
    indexed throws off). FTS5's content check (``'integrity-check'`` with rank 1) cannot
    read a content view that uses ``json_each`` ("SQL logic error")."""
    with built.store.write() as conn:
        conn.exec_driver_sql("INSERT INTO alerts_fts(alerts_fts) VALUES ('integrity-check')")
        mark = watermark(conn)
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE temp.expected_fts USING fts5({ALERT_COLUMNS})")
        conn.exec_driver_sql(f"INSERT INTO temp.expected_fts(rowid, {ALERT_COLUMNS}) SELECT rid, "
                             f"{ALERT_COLUMNS} FROM alerts_fts_source WHERE rid <= ?", (mark,))
        terms: dict[str, set[tuple[object, ...]]] = {}
        for schema, table in (("main", "alerts_fts"), ("temp", "expected_fts")):
            conn.exec_driver_sql(f"CREATE VIRTUAL TABLE temp.{table}_terms USING "
                                 f"fts5vocab({schema}, {table}, instance)")
            rows = conn.exec_driver_sql(f"SELECT term, doc, col, offset FROM temp.{table}_terms")
            terms[table] = {tuple(row) for row in rows}
            conn.exec_driver_sql(f"DROP TABLE temp.{table}_terms")
        sizes, totals = {}, {}
        for table in ("main.alerts_fts", "temp.expected_fts"):
            sizes[table] = set(map(tuple, conn.exec_driver_sql(
                f"SELECT id, sz FROM {table}_docsize")))
            totals[table] = conn.exec_driver_sql(
                f"SELECT block FROM {table}_data WHERE id = 1").scalar()
        conn.exec_driver_sql("DROP TABLE temp.expected_fts")
        below = set(conn.execute(select(alerts.c.id).where(alerts.c.id <= mark)).scalars())
    assert terms["alerts_fts"] == terms["expected_fts"]
    assert sizes["main.alerts_fts"] == sizes["temp.expected_fts"]
    assert {row_id for row_id, _ in sizes["main.alerts_fts"]} == below
    assert totals["main.alerts_fts"] == totals["temp.expected_fts"]
