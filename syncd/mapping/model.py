"""The shape of a mapping file, as pydantic models. `syncd schema` publishes their JSON Schema.

A mapping file holds `rules:`. Each rule has an id, a trigger (`when`), an optional condition
(`if`), actions (`do`) and optional `examples` that `syncd check` runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from syncd.mapping.durations import parse_offset, parse_time_of_day, parse_zone

RULE_ID = r"^[a-z0-9][a-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ChangeTrigger(_Strict):
    """A field of an object changed (optionally from / to given values)."""

    source: str = Field(description="Connector name, e.g. hubspot")
    object: str = Field(description="Object type at the source, e.g. deal")
    field: str = Field(description="The field whose change fires the rule, e.g. dealstage")
    from_: Any = Field(None, alias="from", description="Old value (or list of values)")
    to: Any = Field(None, description="New value (or list); a HubSpot stage by label or id")
    history: Literal["all", "latest"] = Field(
        "all",
        description="all: every intermediate value between two observations is a transition; "
        "latest: only the net change",
    )


class CreatedTrigger(_Strict):
    """An object appeared at the source."""

    source: str
    object: str
    created: Literal[True]


class EnteredValue(_Strict):
    field: str
    value: Any


class DateTrigger(_Strict):
    """A time relative to a date field ("60 days before end_date at 09:00 Europe/Paris"), or
    to the moment a field entered a value ("7 days after dealstage entered Qualified")."""

    source: str
    object: str
    date: str | None = Field(None, description="The dated field, e.g. end_date")
    entered: EnteredValue | None = Field(None, description="Instead of date: field+value")
    offset: str = Field("0d", description="-60d = 60 days before; 7d after; units m h d w")
    at: str | None = Field(
        "09:00", description="Time of day in `timezone`; null keeps the field's own time"
    )
    timezone: str = "UTC"
    catch_up: bool = Field(
        False, description="Fire even when the date was set or moved into the past"
    )

    @field_validator("offset")
    @classmethod
    def _offset(cls, v: str) -> str:
        parse_offset(v)
        return v

    @field_validator("at")
    @classmethod
    def _at(cls, v: str | None) -> str | None:
        if v is not None:
            parse_time_of_day(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        parse_zone(v)
        return v

    def model_post_init(self, _context: Any) -> None:
        if (self.date is None) == (self.entered is None):
            raise ValueError("a date trigger needs exactly one of `date` or `entered`")


class ForEach(_Strict):
    source: str
    object: str
    query: dict[str, Any] = Field(default_factory=dict, description="Connector-specific query")


class CronTrigger(_Strict):
    """A schedule ("0 9 1 */3 *": 09:00 on the first day of each quarter)."""

    cron: str
    timezone: str = "UTC"
    for_each: ForEach | None = Field(None, description="Fire once per object of a query")
    collect: ForEach | None = Field(
        None, description="Fire once, with every object of a query as `items`"
    )
    catch_up: bool = False

    def model_post_init(self, _context: Any) -> None:
        if self.for_each and self.collect:
            raise ValueError("use either for_each or collect, not both")

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(v):
            raise ValueError(f"bad cron expression {v!r} (five fields: min hour day month weekday)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        parse_zone(v)
        return v


def _trigger_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return {
            ChangeTrigger: "change",
            CreatedTrigger: "created",
            DateTrigger: "date",
            CronTrigger: "cron",
        }.get(type(value))
    if not isinstance(value, dict):
        return None
    if "cron" in value:
        return "cron"
    if "date" in value or "entered" in value:
        return "date"
    if "created" in value:
        return "created"
    return "change"


Trigger = Annotated[
    Annotated[ChangeTrigger, Tag("change")]
    | Annotated[CreatedTrigger, Tag("created")]
    | Annotated[DateTrigger, Tag("date")]
    | Annotated[CronTrigger, Tag("cron")],
    Discriminator(_trigger_kind),
]


class Example(_Strict):
    """An input and the actions the rule must plan for it (checked by `syncd check`)."""

    name: str = ""
    object: dict[str, Any] = Field(default_factory=dict, description="The object's fields now")
    previous: dict[str, Any] = Field(default_factory=dict, description="Fields before the change")
    context: dict[str, Any] = Field(default_factory=dict, description="Extra template data")
    item: dict[str, Any] | None = Field(None, description="for_each item, for cron rules")
    items: list[dict[str, Any]] | None = Field(None, description="collect items (cron rules)")
    now: str | None = None
    vars: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the file's `vars` for this example"
    )
    expect: list[dict[str, Any]] = Field(
        description="Planned actions: {action: connector.action, <param>: value, ...}; "
        "params listed must match, others are not compared. [] = the rule must not fire."
    )


ActionCall = dict[str, dict[str, Any]]


class Rule(_Strict):
    id: str = Field(pattern=RULE_ID)
    description: str = ""
    enabled: bool = True
    when: Trigger
    if_: dict[str, Any] | None = Field(
        None, alias="if", description="Condition: field: value | field: {op: value} | all/any/not"
    )
    once_per_object: bool = Field(False, description="Fire at most once per object, ever")
    guarantee: Literal["at_least_once", "at_most_once"] | None = None
    do: list[ActionCall] = Field(min_length=1, description="[{connector.action: {params}}]")
    examples: list[Example] = []


class MappingFile(_Strict):
    # Switches and names an ops person sets once per file (which tracker, who does what);
    # rules read them as `vars.<name>` in conditions and templates.
    vars: dict[str, Any] = Field(default_factory=dict, description="Values rules read as vars.*")
    rules: list[Rule] = Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    schema = MappingFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "syncd mapping file"
    return schema
