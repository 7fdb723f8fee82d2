"""A small evolve experiment for the app's tests: the release-notes prompts over 12 changes,
two generations of three proposals from the simulated endpoint (seeded, so the same every
time)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from promptlooper_tui.workbench import Workbench
from tests.fixtures.evolve_sweep import PROMPTS, evolve_spec

CHANGES = [
    ("Audit log loads Contacts with a Signature header", ["Audit", "Contacts", "Signature"]),
    ("Billing exports Templates as CSV", ["Billing", "Templates", "CSV"]),
    ("Importer filters Invoices in Parallel", ["Importer", "Invoices", "Parallel"]),
    ("Dashboard shows Webhooks by Region", ["Dashboard", "Webhooks", "Region"]),
    ("Search indexes Attachments with OCR", ["Search", "Attachments", "OCR"]),
    ("Scheduler retries Exports after a Timeout", ["Scheduler", "Exports", "Timeout"]),
    ("Mobile app caches Reports for Offline use", ["Mobile", "Reports", "Offline"]),
    ("Admin panel locks Accounts after Failures", ["Admin", "Accounts", "Failures"]),
    ("API paginates Projects with a Cursor", ["API", "Projects", "Cursor"]),
    ("Editor autosaves Drafts every Minute", ["Editor", "Drafts", "Minute"]),
    ("Notifications batch Mentions into a Digest", ["Notifications", "Mentions", "Digest"]),
    ("Calendar syncs Events with Outlook", ["Calendar", "Events", "Outlook"]),
]

EVOLVE_EXPERIMENT: dict[str, Any] = {
    **evolve_spec(
        "evolve-notes",
        [{"input": {"change": c}, "keywords": k} for c, k in CHANGES],
        {
            "plain": PROMPTS["plain"],
            "friendly": "Write a friendly release note about this change:\n{{ item.input.change }}",
        },
        max_concurrency=1,
    ),
    "description": "evolve in the app",
}


def evolve_yaml(**sweep: Any) -> str:
    """EVOLVE_EXPERIMENT, its `sweep:` keys replaced by `sweep` (None removes one)."""
    spec = copy.deepcopy(EVOLVE_EXPERIMENT)
    spec["sweep"] = {k: v for k, v in (spec["sweep"] | sweep).items() if v is not None}
    return yaml.safe_dump(spec, sort_keys=False)


async def evolved_run(wb: Workbench, sweep_id: str) -> str:
    """The id of the first run (by prompt name, then item) of a prompt the proposer wrote."""
    evolution = await wb.evolution(sweep_id)
    page = await wb.list_runs(sweep=sweep_id, limit=10_000)
    evolved = [
        run
        for run in page.items
        if evolution.proposal(str(run.config[evolution.parameter])) is not None
    ]
    assert evolved, "the sweep ran no proposed prompt"
    first = min(evolved, key=lambda run: (str(run.config["prompt"]), run.item_index, run.id))
    return first.id
