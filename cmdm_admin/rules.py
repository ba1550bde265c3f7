"""The rule language, schema_version 1: pydantic models of the files in `rules/`.

The models check the shape of each piece (types, required keys, enum values, identifier
lengths); `cmdm_admin.loader` reads the YAML, keeps line numbers, and checks what spans
pieces (unknown sources, statuses and config names, cycles, annual-only conditions).
Build a `RuleSet` through `loader.load_rules`, which runs both.

A rule node is a mapping with exactly one key: `all`, `any`, `not` (combinators) or a
condition type (`exists_in_year`, `field_compare`, ...). `Rule.kind` names it and
`Rule.body` holds its value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from graphlib import TopologicalSorter
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

#: The only `schema_version` this code reads.
SCHEMA_VERSION = 1

#: Top-level sections; each appears in exactly one file of `rules/`.
SECTIONS = ("config", "sources", "contract", "statuses")

KeyName = Literal["company_id", "plan_code", "product_line_code"]
#: Logical key names, in the order of the contract key.
KEY_NAMES: tuple[KeyName, ...] = get_args(KeyName)

Grain = Literal["company", "product_line", "plan"]
#: The key a status is evaluated at, per grain.
GRAIN_KEYS: dict[str, tuple[KeyName, ...]] = {
    "company": ("company_id",),
    "product_line": ("company_id", "product_line_code"),
    "plan": ("company_id", "plan_code", "product_line_code"),
}

CompareOp = Literal["gt", "ge", "lt", "le", "ne"]
OnMissing = Literal["suspend", "close"]
SourceKind = Literal["facts", "events"]

#: Columns of the snapshot tables that are not statuses.
SNAPSHOT_COLUMNS = frozenset(
    {
        "snapshot_month",
        "company_id",
        "plan_code",
        "product_line_code",
        "product_line_name",
        "aum_balance",
        "plan_count",
        "updated_at",
    }
)
#: Columns of customer.customer_plan_contract that are not annual statuses.
CONTRACT_COLUMNS = frozenset(
    {
        "contract_id",
        "company_id",
        "plan_code",
        "product_line_code",
        "product_line_name",
        "contract_status",
        "status_year",
        "valid_from",
        "valid_to",
        "created_at",
        "updated_at",
    }
)
#: A status becomes a column of the snapshot tables (and, when annual, of the contract
#: table), so its name may not be any of these.
RESERVED_COLUMNS = SNAPSHOT_COLUMNS | CONTRACT_COLUMNS
#: Tracked columns that always exist; annual statuses may be added to them.
BASE_TRACKED_COLUMNS = ("contract_status", "status_year")

#: PostgreSQL truncates identifiers longer than this (NAMEDATALEN - 1).
MAX_IDENTIFIER_BYTES = 63
#: customer.customer_plan_contract.contract_status is varchar(20).
MAX_STATUS_VALUE_CHARS = 20
#: Bounds of exists_in_window.months.
MAX_WINDOW_MONTHS = 120

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")

#: Node keys that combine other nodes.
COMBINATORS = ("all", "any", "not")
#: Conditions that read an events source.
EVENT_CONDITIONS = ("exists_in_year", "exists_in_window")
#: Conditions that read the facts source's presence over months.
PRESENCE_CONDITIONS = ("disappeared", "first_appearance")
#: Conditions that make no sense at an annual status's reference month.
NOT_IN_ANNUAL = EVENT_CONDITIONS + PRESENCE_CONDITIONS
#: Conditions a contract status case may use: the contract status is a function of the
#: key's own facts of the month, so history stays a pure function of the facts.
CONTRACT_CONDITIONS = ("field_equals", "field_compare")


def rule_error(message: str) -> PydanticCustomError:
    """A validation error whose text is `message`, verbatim (no template expansion)."""
    return PydanticCustomError("cmdm", "{reason}", {"reason": message})


def describe(value: Any) -> str:
    """What kind of YAML value `value` is, for messages: 'a string', 'a list', ..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if hasattr(value, "isoformat"):
        return "a date (quote it to make it a string)"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__


# --- scalar types -------------------------------------------------------------------------


def _string(value: Any, what: str = "a string") -> str:
    if not isinstance(value, str):
        raise rule_error(f"expected {what}, got {describe(value)}")
    return value


def _check_identifier(value: str) -> str:
    if value == "":
        raise rule_error("must not be empty")
    if "\x00" in value:
        raise rule_error(f"identifier {value!r} contains a NUL character")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise rule_error(f"identifier {value!r} is not valid Unicode text") from None
    if size > MAX_IDENTIFIER_BYTES:
        raise rule_error(
            f"identifier {value!r} is {size} bytes long in UTF-8; "
            f"PostgreSQL identifiers are at most {MAX_IDENTIFIER_BYTES} bytes"
        )
    return value


def _identifier(value: Any) -> str:
    """A column name as written in the table, unquoted: any text without NUL, at most 63
    bytes in UTF-8. cmdm always quotes it."""
    return _check_identifier(_string(value, "a column name"))


#: A column or table name: any text a quoted PostgreSQL identifier can hold.
Identifier = Annotated[str, PlainValidator(_identifier, json_schema_input_type=str)]


def _table_name(value: Any) -> str:
    """`schema.table`, unquoted (`business.规模明细`); each part as for a column name."""
    text = _string(value, "schema.table")
    parts = text.split(".")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise rule_error(f"expected schema.table (e.g. business.规模明细), got {text!r}")
    for part in parts:
        if len(part) >= 2 and part.startswith('"') and part.endswith('"'):
            raise rule_error(f"write {text!r} without double quotes; cmdm quotes identifiers")
        _check_identifier(part)
    return text


#: `schema.table`, unquoted; each part an `Identifier`.
TableName = Annotated[str, PlainValidator(_table_name, json_schema_input_type=str)]


def _name(value: Any, what: str) -> str:
    text = _string(value)
    if not NAME_RE.fullmatch(text):
        raise rule_error(
            f"invalid {what} name {text!r}: use lower-case letters, digits and _, "
            "starting with a letter, at most 63 characters"
        )
    return text


def _status_name(value: Any) -> str:
    """A lower-case SQL name (`[a-z][a-z0-9_]*`, at most 63 characters) that is not a
    column of the snapshot or contract tables: it becomes a boolean column."""
    text = _name(value, "status")
    if text in RESERVED_COLUMNS:
        raise rule_error(
            f"status name {text!r} is reserved: it is a column of the snapshot or contract tables"
        )
    return text


def _config_name(value: Any) -> str:
    """A lower-case SQL name: `[a-z][a-z0-9_]*`, at most 63 characters."""
    return _name(value, "config")


def _source_name(value: Any) -> str:
    """A lower-case SQL name: `[a-z][a-z0-9_]*`, at most 63 characters."""
    return _name(value, "source")


#: Names of config entries and sources: lower-case, like SQL identifiers.
ConfigName = Annotated[str, PlainValidator(_config_name, json_schema_input_type=str)]
SourceName = Annotated[str, PlainValidator(_source_name, json_schema_input_type=str)]
#: A status name becomes a boolean column: a lower-case SQL identifier, not reserved.
StatusName = Annotated[str, PlainValidator(_status_name, json_schema_input_type=str)]


def _reference(value: Any) -> str:
    """The name of something defined elsewhere in the rules (a source, a status, a config
    entry, a tracked column); the loader checks that it exists."""
    text = _string(value, "a name")
    if text == "":
        raise rule_error("must not be empty")
    return text


#: A name referring to something defined elsewhere in the rules; the loader checks it exists.
Reference = Annotated[str, PlainValidator(_reference, json_schema_input_type=str)]


def _unicode(text: str) -> str:
    """Refuse lone surrogates (a YAML escape such as "\\ud800"): not text PostgreSQL can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise rule_error(f"{text!r} is not valid Unicode text") from None
    return text


def _text(value: Any) -> str:
    """Free text, not blank, without NUL."""
    text = _string(value)
    if not text.strip():
        raise rule_error("must not be empty")
    if "\x00" in text:
        raise rule_error("must not contain a NUL character")
    return _unicode(text)


Text = Annotated[str, PlainValidator(_text, json_schema_input_type=str)]


def _status_value(value: Any) -> str:
    """A contract status value such as `正常`: text, not blank, at most 20 characters
    (`contract_status` is varchar(20))."""
    text = _string(value, "a status value (a string)")
    if not text.strip():
        raise rule_error("a status value must not be empty")
    if "\x00" in text:
        raise rule_error(f"status value {text!r} contains a NUL character")
    if len(text) > MAX_STATUS_VALUE_CHARS:
        raise rule_error(
            f"status value {text!r} is {len(text)} characters long; contract_status holds at "
            f"most {MAX_STATUS_VALUE_CHARS}"
        )
    return _unicode(text)


#: A contract status value such as 正常.
StatusValue = Annotated[str, PlainValidator(_status_value, json_schema_input_type=str)]


def _number(value: Any) -> int | float:
    """A finite number (integer or decimal; not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise rule_error(f"expected a number, got {describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise rule_error(f"expected a finite number, got {value}")
    return value


Number = Annotated[int | float, PlainValidator(_number, json_schema_input_type=int | float)]


def _scalar(value: Any) -> str | int | float | bool:
    """A string, a finite number or a boolean: the literal a column is compared with."""
    if isinstance(value, bool | str):
        if isinstance(value, str) and "\x00" in value:
            raise rule_error(f"value {value!r} contains a NUL character")
        return _unicode(value) if isinstance(value, str) else value
    if isinstance(value, int | float):
        return _number(value)
    raise rule_error(f"expected a string, number or boolean, got {describe(value)}")


#: A literal a field is compared with: string, number or boolean.
Scalar = Annotated[
    str | int | float | bool,
    PlainValidator(_scalar, json_schema_input_type=str | int | float | bool),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigRef(_Model):
    """`{config: name}`: the number named `name` in the `config` section."""

    config: Reference = Field(description="A name defined in the `config` section.")


def _config_ref(value: Any) -> ConfigRef | None:
    if isinstance(value, ConfigRef):
        return value
    if not isinstance(value, dict):
        return None
    if set(value) != {"config"}:
        keys = ", ".join(repr(k) for k in value) or "none"
        raise rule_error(f"expected {{config: name}}, got a mapping with keys {keys}")
    return ConfigRef(config=_reference(value["config"]))


def _number_or_config(value: Any) -> int | float | ConfigRef:
    """A finite number, or `{config: name}`: the number of that name in `config`."""
    ref = _config_ref(value)
    if ref is not None:
        return ref
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise rule_error(f"expected a number or {{config: name}}, got {describe(value)}")
    return _number(value)


NumberOrConfig = Annotated[
    int | float | ConfigRef,
    PlainValidator(_number_or_config, json_schema_input_type=int | float | ConfigRef),
]


def _count_or_config(value: Any) -> int | ConfigRef:
    """A whole number of at least 1, or `{config: name}` naming one."""
    ref = _config_ref(value)
    if ref is not None:
        return ref
    if isinstance(value, bool) or not isinstance(value, int):
        raise rule_error(f"expected a whole number or {{config: name}}, got {describe(value)}")
    if value < 1:
        raise rule_error(f"must be at least 1, got {value}")
    return value


CountOrConfig = Annotated[
    int | ConfigRef, PlainValidator(_count_or_config, json_schema_input_type=int | ConfigRef)
]


def _months(value: Any) -> int:
    """A whole number of months from 1 to 120."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise rule_error(f"months must be a whole number, got {describe(value)}")
    if not 1 <= value <= MAX_WINDOW_MONTHS:
        raise rule_error(f"months must be between 1 and {MAX_WINDOW_MONTHS}, got {value}")
    return value


Months = Annotated[int, PlainValidator(_months, json_schema_input_type=int)]


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A non-empty list of logical key names (`company_id`, `plan_code`,
    `product_line_code`), each listed once."""
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise rule_error(f"{value!r} is listed twice")
        seen.add(value)
    return values


MatchKeys = Annotated[tuple[KeyName, ...], Field(min_length=1), AfterValidator(_unique)]


# --- sources ------------------------------------------------------------------------------


class SourceKeys(_Model):
    """Columns of a source table holding each logical key part."""

    company_id: Identifier = Field(description="The column holding the company id.")
    product_line_code: Identifier = Field(description="The column holding the product line code.")
    plan_code: Identifier | None = Field(
        None,
        description="The column holding the plan code. Required for the facts source (the "
        "contract key includes it); an events source without it can match only by company "
        "and product line.",
    )

    @property
    def names(self) -> tuple[KeyName, ...]:
        """The logical key names this source maps, in contract-key order."""
        return tuple(k for k in KEY_NAMES if getattr(self, k) is not None)

    def column(self, key: KeyName) -> str:
        """The column of `key`; KeyError when the source does not map it."""
        column = getattr(self, key)
        if column is None:
            raise KeyError(key)
        return column


class Source(_Model):
    """A table the rules read: the monthly facts, or dated event records."""

    kind: SourceKind = Field(
        description="`facts`: the monthly fact rows (exactly one source has this kind); "
        "`events`: dated records such as awards and losses."
    )
    table: TableName = Field(description="The table (or view) read.")
    date_field: Identifier = Field(
        description="The `date` column that places a row in time: the fact month (any day "
        "of it), or the date an event was reported."
    )
    keys: SourceKeys = Field(description="Which columns hold the logical key parts.")

    @property
    def table_schema(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".", 1)[1]


# --- rule nodes ---------------------------------------------------------------------------


_EVENTS_SOURCE = "An events source (a name in `sources` with `kind: events`)."
_MATCH = (
    "The logical keys an events record must share with the key evaluated. Default: the "
    "keys of the status's grain; each listed key must be part of the grain and mapped by "
    "the source."
)
_FACTS_SOURCE = "The facts source: the default, and the only source allowed."


class ExistsInYear(_Model):
    """A record of an events source in the snapshot's calendar year, dated on or before
    the snapshot month."""

    source: Reference = Field(description=_EVENTS_SOURCE)
    match: MatchKeys | None = Field(None, description=_MATCH)


class ExistsInWindow(_Model):
    """A record of an events source dated within the last `months` months up to the
    snapshot month."""

    source: Reference = Field(description=_EVENTS_SOURCE)
    months: Months = Field(
        description="Window length: from the first day of the month `months` - 1 months "
        "before the snapshot month to the snapshot month's end."
    )
    match: MatchKeys | None = Field(None, description=_MATCH)


class FieldEquals(_Model):
    """Some fact row of the key in the month has `field` = `value`."""

    field: Identifier = Field(description="A column of the facts table.")
    value: Scalar = Field(
        description="The literal compared with; its type must fit the column (a string "
        "for a text column, a number for a numeric one, true/false for a boolean one)."
    )


class FieldCompare(_Model):
    """SUM(`field`) over the key's facts of the month compared with `value`."""

    field: Identifier = Field(
        description="A numeric column of the facts table; its SUM is 0 when the key has no "
        "facts in the month."
    )
    op: CompareOp = Field(description="`gt` >, `ge` >=, `lt` <, `le` <=, `ne` <> (SUM `op` value).")
    value: NumberOrConfig = Field(description="The number compared with.")


class Disappeared(_Model):
    """The key has facts in the previous loaded month and none in this one."""

    source: Reference | None = Field(None, description=_FACTS_SOURCE)


class FirstAppearance(_Model):
    """This month is the first loaded month with facts for the key."""

    source: Reference | None = Field(None, description=_FACTS_SOURCE)


class TopN(_Model):
    """The key is among the `n` largest by SUM(`field`) within its `within` group
    (annual statuses only)."""

    field: Identifier = Field(
        description="A numeric column of the facts table, summed per key of the grain."
    )
    n: CountOrConfig = Field(
        description="How many: ranks 1..n within the group hold (ties share a rank)."
    )
    within: Identifier = Field(
        description="The column whose values form the groups (e.g. the branch, 机构代码)."
    )


_NULLABLE_NODES = ("disappeared", "first_appearance")


class Rule(_Model):
    """A rule node: a mapping with exactly one key."""

    all_: Annotated[tuple[Rule, ...], Field(min_length=1)] | None = Field(
        None, alias="all", description="Holds when every node of the list holds (AND)."
    )
    any_: Annotated[tuple[Rule, ...], Field(min_length=1)] | None = Field(
        None, alias="any", description="Holds when some node of the list holds (OR)."
    )
    not_: Rule | None = Field(None, alias="not", description="Holds when the node does not.")
    exists_in_year: ExistsInYear | None = Field(None, description=ExistsInYear.__doc__)
    exists_in_window: ExistsInWindow | None = Field(None, description=ExistsInWindow.__doc__)
    field_equals: FieldEquals | None = Field(None, description=FieldEquals.__doc__)
    field_compare: FieldCompare | None = Field(None, description=FieldCompare.__doc__)
    disappeared: Disappeared | None = Field(
        None, description=f"{Disappeared.__doc__} `disappeared:` alone means `{{}}`."
    )
    first_appearance: FirstAppearance | None = Field(
        None, description=f"{FirstAppearance.__doc__} `first_appearance:` alone means `{{}}`."
    )
    status: Reference | None = Field(
        None,
        description="The value of another status. An annual status may read only annual "
        "statuses; a monthly one, monthly statuses of its own grain and annual statuses of "
        "any grain; no cycles.",
    )
    top_n: TopN | None = Field(None, description=TopN.__doc__)

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, data: Any) -> Any:
        if isinstance(data, Rule):
            return data
        if not isinstance(data, dict):
            raise rule_error(
                "expected a rule node: a mapping with one key "
                f"(a condition, all, any or not), got {describe(data)}"
            )
        if len(data) != 1:
            if not data:
                raise rule_error(f"empty rule node; expected one of: {', '.join(NODE_KINDS)}")
            keys = ", ".join(repr(k) for k in data)
            raise rule_error(
                f"a rule node has exactly one key, got {len(data)}: {keys}; "
                "combine conditions with all: [...] or any: [...]"
            )
        ((key, value),) = data.items()
        if key in _NULLABLE_NODES and value is None:
            return {key: {}}
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            alias = cls.model_fields[info.field_name or ""].alias or info.field_name
            raise rule_error(f"{alias} needs a value")
        return value

    def __repr_args__(self) -> Iterator[tuple[str, Any]]:
        yield self.kind, self.body

    @property
    def kind(self) -> str:
        """The node's key: 'all', 'any', 'not' or a condition type."""
        for name, info in type(self).model_fields.items():
            if getattr(self, name) is not None:
                return info.alias or name
        raise AssertionError("a validated rule node has one key")  # pragma: no cover

    @property
    def body(self) -> Any:
        """The node's value: a tuple of nodes (all/any), a node (not), a status name
        (status), or the condition's model."""
        return getattr(self, _FIELD_OF_KIND[self.kind])

    @property
    def children(self) -> tuple[Rule, ...]:
        if self.all_ is not None:
            return self.all_
        if self.any_ is not None:
            return self.any_
        if self.not_ is not None:
            return (self.not_,)
        return ()

    def walk(
        self, path: tuple[str | int, ...] = ()
    ) -> Iterator[tuple[tuple[str | int, ...], Rule]]:
        """Every node, parents first, with its path below this node (as in the YAML:
        ('all', 1, 'not'))."""
        yield path, self
        if self.not_ is not None:
            yield from self.not_.walk((*path, "not"))
        else:
            for index, child in enumerate(self.children):
                yield from child.walk((*path, self.kind, index))

    def status_refs(self) -> tuple[str, ...]:
        """Names of the statuses this rule reads, in order of appearance, once each."""
        refs = (node.status for _, node in self.walk() if node.status is not None)
        return tuple(dict.fromkeys(refs))

    def kinds(self) -> frozenset[str]:
        """Every node kind used in this rule."""
        return frozenset(node.kind for _, node in self.walk())


_FIELD_OF_KIND = {info.alias or name: name for name, info in Rule.model_fields.items()}
#: Every key a rule node may have.
NODE_KINDS = tuple(_FIELD_OF_KIND)
CONDITION_KINDS = tuple(k for k in NODE_KINDS if k not in COMBINATORS)


# --- sections -----------------------------------------------------------------------------


class Status(_Model):
    """A boolean status: a column of the snapshot tables."""

    description: Text = Field(
        description="What the status means, for people: shown by `cmdm explain`; an annual "
        "status's text is also part of the contract sync function's COMMENT."
    )
    grain: Grain | None = Field(
        None,
        description="Pins a coarser key where the business meaning is coarser: `company` "
        "(company_id), `product_line` (company_id, product_line_code) or `plan` (company_id, "
        "plan_code, product_line_code). Omitted: the status is evaluated at the key of the "
        "row it is written on (the contract key in the plan table, company and product line "
        "in the business table; an annual status, at the contract key of each version).",
    )
    annual: StrictBool = Field(
        False,
        description="`true`: evaluated once a year at the reference month and stored on the "
        "contract versions (it may then be a tracked column); `false`: evaluated as of each "
        "snapshot month.",
    )
    rule: Rule = Field(description="The condition: a rule node.")

    def grain_at(self, row_grain: str) -> str:
        """The grain the rule is evaluated at on a row of `row_grain`."""
        return self.grain or row_grain

    @property
    def decided_grain(self) -> str:
        """An annual status's grain: the key its yearly decision is stored per."""
        return self.grain or "plan"

    @property
    def keys(self) -> tuple[KeyName, ...]:
        """The logical keys the rule can read at every row it is evaluated at (an unpinned
        monthly status is also written on business rows, which have no plan)."""
        if self.annual:
            return GRAIN_KEYS[self.decided_grain]
        return GRAIN_KEYS[self.grain or "product_line"]


class StatusCase(_Model):
    """One case of the contract status: `value` when `when` holds."""

    value: StatusValue = Field(description="One of `status_values`.")
    when: Rule = Field(
        description="A rule node using only field_equals, field_compare, all, any and not."
    )


class ContractStatusRule(_Model):
    """The first case whose `when` holds gives the status, else `default`."""

    cases: tuple[StatusCase, ...] = Field((), description="Tried in order.")
    default: StatusValue = Field(description="The status when no case holds.")


class Contract(_Model):
    """How a contract key's tracked state is derived from the facts each loaded month."""

    source: Reference = Field(description="The facts source.")
    measure: Identifier = Field(
        description="A numeric column of the facts table; its SUM over a key's rows of a "
        "month is the key's AUM (`aum_balance`)."
    )
    branch_field: Identifier = Field(description="The column of the facts naming the branch.")
    status_values: Annotated[tuple[StatusValue, ...], Field(min_length=1)] = Field(
        description="Every value `contract_status` may take, each listed once."
    )
    status: ContractStatusRule = Field(description="How a key's status of a month is chosen.")
    on_missing: OnMissing = Field(
        "suspend",
        description="What a loaded month without facts for a key that appeared before does: "
        "`suspend` keeps the version open with `suspended_status`; `close` ends it (a later "
        "reappearance opens a new one).",
    )
    suspended_status: StatusValue | None = Field(
        None,
        description="The status of a key absent from a loaded month; required with "
        "`on_missing: suspend`.",
    )
    tracked_columns: Annotated[tuple[Reference, ...], Field(min_length=1)] = Field(
        description="The columns whose change opens a new version: `contract_status` and "
        "`status_year` (both required) and any annual statuses."
    )


class RuleSet(_Model):
    """The validated rules: every section of every file in `rules/`."""

    config: dict[ConfigName, Number] = Field(
        description="Named numbers, referenced from rules as `{config: name}`."
    )
    sources: dict[SourceName, Source] = Field(description="The tables the rules read, by name.")
    contract: Contract = Field(description="How the contract history is derived.")
    statuses: dict[StatusName, Status] = Field(
        description="The boolean statuses, by name; each is a column of both snapshot tables."
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="Raw text of each rule file, by file name (e.g. 'statuses.yml'), in read "
        "order. Set by the loader, not written in YAML.",
    )
    origin: str = Field(
        "rules/",
        description="Where the rules were read from, for messages (e.g. 'rules/'). Set by the "
        "loader, not written in YAML.",
    )
    #: Where each key path of the sections was read: (file, (line, column) of the value,
    #: (line, column) of the key or None). Filled by the loader; read it through
    #: `cmdm_admin.loader.locate`.
    _positions: dict[tuple[str | int, ...], tuple[str, tuple[int, int], tuple[int, int] | None]] = (
        PrivateAttr(default_factory=dict)
    )

    def resolve(self, value: int | float | ConfigRef) -> int | float:
        """A number, or the config value a `{config: name}` names."""
        return self.config[value.config] if isinstance(value, ConfigRef) else value

    @property
    def facts_source_name(self) -> str:
        return next(name for name, s in self.sources.items() if s.kind == "facts")

    @property
    def facts_source(self) -> Source:
        return self.sources[self.facts_source_name]

    @property
    def event_sources(self) -> dict[str, Source]:
        return {name: s for name, s in self.sources.items() if s.kind == "events"}

    @property
    def annual_statuses(self) -> dict[str, Status]:
        """Statuses evaluated once per year at the reference month, in definition order."""
        return {name: s for name, s in self.statuses.items() if s.annual}

    @property
    def monthly_statuses(self) -> dict[str, Status]:
        """Statuses evaluated as of each snapshot month, in definition order."""
        return {name: s for name, s in self.statuses.items() if not s.annual}

    def dependencies(self, name: str) -> tuple[str, ...]:
        """Statuses the status `name` reads directly."""
        return self.statuses[name].rule.status_refs()

    def status_order(self) -> tuple[str, ...]:
        """Every status, each after the statuses it reads (graphlib's topological order: the
        same rules give the same order). A cycle, which the loader rejects, raises
        `graphlib.CycleError`."""
        graph = {n: [d for d in self.dependencies(n) if d in self.statuses] for n in self.statuses}
        return tuple(TopologicalSorter(graph).static_order())
