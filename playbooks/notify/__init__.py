"""Notifications: the persistent outbox, its worker and channels (e-mail, webhook, inbox).

:func:`build_notifications` is what the composition root calls once per home.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cases.store import Store
from playbooks.notify.channels import Channel, EmailChannel, InboxChannel, WebhookChannel
from playbooks.notify.config import NotifyConfig, load_notify_config
from playbooks.notify.outbox import Outbox
from playbooks.notify.templates import Templates
from playbooks.notify.worker import OutboxWorker
from playbooks.tables import ensure_tables


@dataclass
class Notifications:
    """The outbox (enqueue, inbox) and the worker that drains it."""

    outbox: Outbox
    worker: OutboxWorker


def build_notifications(store: Store, home: Path | None = None,
                        config: NotifyConfig | None = None) -> Notifications:
    """Outbox and worker for ``store``; settings from ``home/notify.toml`` unless given."""
    ensure_tables(store.engine)
    if config is None:
        config = load_notify_config(home) if home else NotifyConfig()
    override = home / "templates" / "notify" if home else None
    templates = Templates(override)
    channels: dict[str, Channel] = {"email": EmailChannel(config.smtp),
                                    "webhook": WebhookChannel(config), "inbox": InboxChannel()}
    return Notifications(outbox=Outbox(store, config, templates),
                         worker=OutboxWorker(store, config, channels))


__all__ = ["Notifications", "NotifyConfig", "Outbox", "OutboxWorker", "build_notifications"]
