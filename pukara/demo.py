"""``pukara demo``: a demo home with a constituency, real sample data, and live traffic.

The demo imports the fictional constituency of ``demo_data/entities.yaml``, creates an
analyst account, ingests the public samples of ``../shared/data`` (Suricata EVE,
Shadowserver), loads the MISP feed sample as intelligence, then runs the API server while a
background thread replays the Suricata sample's alerts with fresh timestamps so the queue
keeps moving. Tokens are written once to ``$PUKARA_HOME/demo-tokens.txt`` (mode 0600).
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from cases.services.entity_file import load_entities_file
from cases.services.identity import Role
from collectors.sources.files import FileSource
from pukara.core.schema import Alert, utcnow
from pukara.wiring import Services

DEMO_SAMPLES = (
    ("suricata/Muntaha-Ghafoor-eve.json", "suricata"),
    ("suricata/mkhairin-eve.json", "suricata"),
    ("shadowserver", "shadowserver"),
)
REPLAY_SAMPLE = "suricata/Muntaha-Ghafoor-eve.json"


def default_samples() -> Path | None:
    """``../shared/data`` beside the checkout, when present."""
    candidate = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def prepare(services: Services, samples: Path | None) -> dict[str, Any]:
    """Fill an empty home once: entities, an analyst, tokens, samples. Idempotent."""
    summary: dict[str, Any] = {"entities": 0, "ingested": {}, "tokens_file": None}
    if services.identity.entities():
        return summary
    data = resources.files("pukara.demo_data").joinpath("entities.yaml")
    with resources.as_file(data) as path:
        summary["entities"] = services.identity.upsert_entities(load_entities_file(path))
    services.identity.add_user("analyst", Role.ANALYST)
    tokens = {"analyst": services.identity.issue_user_token("analyst")}
    for entity in services.identity.entities():
        tokens[entity.id] = services.identity.issue_entity_token(entity.id)
    tokens_file = services.settings.home / "demo-tokens.txt"
    tokens_file.write_text("".join(f"{name}\t{token}\n" for name, token in tokens.items()))
    tokens_file.chmod(0o600)
    summary["tokens_file"] = str(tokens_file)
    if samples is not None:
        source = FileSource()
        for relative, fmt in DEMO_SAMPLES:
            for report in source.reports([samples / relative], fmt=fmt):
                result = services.pipeline.ingest(report)
                summary["ingested"][report.filename] = result.accepted + result.duplicates
    return summary


def load_replay(samples: Path | None) -> list[Alert]:
    """The alerts of the replay sample, parsed once."""
    if samples is None or not (samples / REPLAY_SAMPLE).is_file():
        return []
    with FileSource().open_report(samples / REPLAY_SAMPLE, fmt="suricata") as report:
        from collectors.registry import parser

        return [r for r in parser("suricata").parse(report) if isinstance(r, Alert)]


class Replayer(threading.Thread):
    """Re-sends sample alerts with fresh timestamps every ``interval`` seconds."""

    def __init__(self, services: Services, alerts: list[Alert], interval: float = 2.0) -> None:
        super().__init__(name="pukara-demo-replay", daemon=True)
        self.services = services
        self.alerts = alerts
        self.interval = interval
        self.stop = threading.Event()
        self._random = random.Random(7)

    def run(self) -> None:
        """Until stopped: pick a few alerts, stamp them now, send them through the pipeline."""
        while self.alerts and not self.stop.wait(self.interval):
            now = utcnow()
            picked = self._random.sample(self.alerts, k=min(5, len(self.alerts)))
            batch = [
                a.model_copy(update={"observed_at": now - timedelta(seconds=i), "received_at": now})
                for i, a in enumerate(picked)
            ]
            self.services.pipeline.ingest_alerts(batch)
