"""The ``yara`` enricher: scan each alert's attachments and add a ``Hit`` per matching rule."""

from __future__ import annotations

from enrichment.yara.scanner import Scanner
from pukara.core.schema import Alert

#: where scan errors of an alert's attachments are kept (``[{"attachment", "error"}]``)
ERRORS_KEY = "yara_errors"


class YaraEnricher:
    """Scans a batch's attachments in a child process (memory cap and timeout per payload,
    SECURITY F3); enriching twice adds nothing."""

    name = "yara"

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner

    def enrich(self, alerts: list[Alert]) -> None:
        """Add one ``kind="yara"`` hit per (attachment, namespace, rule) not already present."""
        results = iter(self.scanner.scan_payloads(
            [(a.data, a.filename) for alert in alerts for a in alert.attachments]))
        for alert in alerts:
            for attachment in alert.attachments:
                result = next(results)
                if result.error is not None:
                    _note_error(alert, attachment.filename, result.error)
                    continue
                observable = f"sha256:{attachment.sha256}"
                present = {(h.observable, h.namespace, h.rule) for h in alert.hits}
                for match in result.matches:
                    if (observable, match.namespace, match.rule) not in present:
                        alert.hits.append(match.to_hit(observable))


def _note_error(alert: Alert, filename: str, error: str) -> None:
    errors = alert.extra.setdefault(ERRORS_KEY, [])
    entry = {"attachment": filename, "error": error}
    if entry not in errors:
        errors.append(entry)
