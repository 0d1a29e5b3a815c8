"""Result models of the workflow tests, each with a contract (module level: task annotations resolve here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from eventbus import EventContract


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str
    score: int


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total: int
    users: list[str] = []


class Count(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int


def _contract(model: type[BaseModel], name: str) -> EventContract[Profile]:
    schema = model.model_json_schema()
    schema["$id"] = f"https://eventbus.dev/test/{name}.json"
    return EventContract(type=f"test.workflow.{name}.v1", exchange="test.workflow", model=model,  # type: ignore[arg-type]
                         schema=schema)


PROFILE = _contract(Profile, "profile")
SUMMARY = _contract(Summary, "summary")
COUNT = _contract(Count, "count")
