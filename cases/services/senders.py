"""Which entity sent an e-mail report — only when our own mail server vouches for the sender.

A ``From:`` header is whatever the sender typed (SECURITY D10: ``a@evil.pe@entidad.gob.pe``).
Attribution therefore needs the ``Authentication-Results`` header that the center's own MTA
adds (RFC 8601), identified by its authserv-id (``Settings.mail_authserv_id``): with
``dmarc=pass`` for the From domain, the sender's address is looked up among the entities'
registered contacts, then its domain among their domains (longest suffix). Anything else —
no trusted header, a failed check, an unknown sender — leaves the report unassigned for an
analyst to triage; it is never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.headerregistry import Address
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from pukara.core.schema import Entity

_RESULT = re.compile(r"\b(dmarc|dkim|spf)=(\w+)(?:[^;]*?header\.(?:from|d)=([^\s;]+))?", re.I)


class SenderDirectory:
    """Registered contact addresses and domains → entity id."""

    def __init__(self, entities: Iterable[Entity], authserv_id: str) -> None:
        self.authserv_id = authserv_id.strip().lower()
        self.by_address: dict[str, str] = {}
        self.by_domain: dict[str, str] = {}
        for entity in entities:
            for contact in entity.contacts:
                if contact.email:
                    self.by_address[contact.email.lower()] = entity.id
            for domain in entity.domains:
                self.by_domain[domain] = entity.id

    def entity_for(self, head: bytes) -> str | None:
        """The entity of a message whose headers are ``head``, or None."""
        if not self.authserv_id:
            return None
        headers = BytesHeaderParser(policy=default_policy).parsebytes(head)
        sender = _single_address(headers.get_all("From") or [])
        if sender is None or not self._vouched(headers.get_all("Authentication-Results") or [],
                                               sender.domain.lower()):
            return None
        found = self.by_address.get(sender.addr_spec.lower())
        if found:
            return found
        labels = sender.domain.lower().split(".")
        for start in range(len(labels) - 1):
            owner = self.by_domain.get(".".join(labels[start:]))
            if owner:
                return owner
        return None

    def _vouched(self, results: list[str], from_domain: str) -> bool:
        # only the topmost header, and only if our own server wrote it
        if not results:
            return False
        top = str(results[0])
        authserv, _, rest = top.partition(";")
        if authserv.strip().split()[0].lower() != self.authserv_id:
            return False
        for method, verdict, domain in _RESULT.findall(rest):
            if method.lower() == "dmarc" and verdict.lower() == "pass":
                return not domain or domain.lower().strip('"') == from_domain
        return False


def _single_address(values: list[object]) -> Address | None:
    addresses = [a for value in values for a in getattr(value, "addresses", ())]
    if len(addresses) != 1 or not addresses[0].domain:
        return None
    address: Address = addresses[0]
    return address
