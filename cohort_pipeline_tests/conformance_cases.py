"""Loading the PostHog conformance scenarios (fixtures/conformance/*.json, copied from ../shared/conformance).

Each scenario holds persons, events, a cohort definition and the members (or error) PostHog's own test expected.
This module turns one into the engine's inputs; the tests that use it live beside the code they check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

CONFORMANCE_DIR = Path(__file__).parent / "fixtures" / "conformance"
COHORT_LEAF_TYPES = {"cohort", "static-cohort", "precalculated-cohort", "dynamic-cohort"}
FIRST_OTHER_COHORT_ID = 1000
FIRST_ACTION_ID = 5000
MISSING_COHORT_ID = 999_999
SCENARIO_COHORT_ID = 1


def all_case_paths() -> list[Path]:
    return sorted(CONFORMANCE_DIR.glob("*.json"))


@dataclass
class Case:
    path: Path
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Case:
        return cls(path, json.loads(path.read_text()))

    @property
    def now(self) -> datetime:
        return datetime.fromisoformat(self.data["now"].replace("Z", "+00:00"))

    @property
    def person_key(self) -> dict[str, str]:
        """Our short person id -> the id the engine sees (the UUID where a CSV refers to persons by UUID)."""
        return {p["id"]: p.get("uuid", p["id"]) for p in self.data["persons"]}

    def persons(self) -> pl.DataFrame:
        rows = [
            {
                "id": self.person_key[p["id"]],
                "created_at": datetime.fromisoformat(p["created_at"].replace("Z", "+00:00")),
                "properties": json.dumps(p.get("properties") or {}),
            }
            for p in self.data["persons"]
        ]
        schema = {"id": pl.String, "created_at": pl.Datetime("us", "UTC"), "properties": pl.String}
        return pl.DataFrame(rows, schema=schema)

    def person_distinct_ids(self) -> pl.DataFrame:
        rows = [
            {"distinct_id": d, "person_id": self.person_key[p["id"]]}
            for p in self.data["persons"]
            for d in p["distinct_ids"]
        ]
        return pl.DataFrame(rows, schema={"distinct_id": pl.String, "person_id": pl.String})

    def events(self) -> pl.DataFrame:
        rows = [
            {
                "uuid": f"e{index}",
                "event": e["event"],
                "distinct_id": e["distinct_id"],
                "timestamp": datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")),
                "properties": json.dumps(e.get("properties") or {}),
            }
            for index, e in enumerate(self.data["events"])
        ]
        schema = {"uuid": pl.String, "event": pl.String, "distinct_id": pl.String,
                  "timestamp": pl.Datetime("us", "UTC"), "properties": pl.String}
        return pl.DataFrame(rows, schema=schema)

    @property
    def cohort_ids(self) -> dict[str, int]:
        """``other_cohorts[].ref`` -> the integer id it gets in the run (``c_missing`` names no cohort)."""
        ids = {c["ref"]: FIRST_OTHER_COHORT_ID + i for i, c in enumerate(self.data.get("other_cohorts") or [])}
        ids.setdefault("c_missing", MISSING_COHORT_ID)
        return ids

    @property
    def action_ids(self) -> dict[str, int]:
        """``actions[].ref`` -> the integer id the action gets in the run."""
        return {a["ref"]: FIRST_ACTION_ID + i for i, a in enumerate(self.data.get("actions") or [])}

    def actions(self) -> list[dict[str, Any]]:
        """The scenario's actions as PostHog action JSON (``{id, name, steps}``)."""
        return [
            {"id": self.action_ids[a["ref"]], "name": a.get("name"), "steps": a.get("steps_json") or []}
            for a in self.data.get("actions") or []
        ]

    def resolve_refs(self, node: Any) -> Any:
        """Replace cohort and action references by ref with integer ids, as PostHog's tests do with real ids:
        cohort leaves' ``value``, behavioural ``key`` / ``seq_event`` of type ``actions`` and legacy groups'
        ``action_id``."""
        if isinstance(node, dict):
            out = {k: self.resolve_refs(v) for k, v in node.items()}
            if out.get("type") in COHORT_LEAF_TYPES and out.get("value") in self.cohort_ids:
                out["value"] = self.cohort_ids[out["value"]]
            actions = self.action_ids
            if out.get("event_type") == "actions" and out.get("key") in actions:
                out["key"] = actions[out["key"]]
            if out.get("seq_event_type") == "actions" and out.get("seq_event") in actions:
                out["seq_event"] = actions[out["seq_event"]]
            if out.get("action_id") in actions:
                out["action_id"] = actions[out["action_id"]]
            return out
        if isinstance(node, list):
            return [self.resolve_refs(v) for v in node]
        return node

    def definition(self, raw: dict[str, Any], cohort_id: int, *, legacy: bool = False) -> dict[str, Any]:
        """A PostHog cohort object: ``filters`` wins over ``legacy_groups`` (kept as ``groups``), as in PostHog.
        ``legacy=True`` drops ``filters`` so that the legacy ``groups`` are converted by the model instead."""
        out: dict[str, Any] = {"id": cohort_id, "is_static": raw.get("is_static", False)}
        if raw.get("filters") is not None and not (legacy and raw.get("legacy_groups") is not None):
            out["filters"] = self.resolve_refs(raw["filters"])
        elif raw.get("legacy_groups") is not None:
            out["groups"] = self.resolve_refs(raw["legacy_groups"])
        return out

    def other_definitions(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [
            (raw, self.definition(raw, self.cohort_ids[raw["ref"]]))
            for raw in self.data.get("other_cohorts") or []
        ]

    def expected_members(self) -> list[str]:
        return sorted(self.person_key[p] for p in self.data["expected_members"])

