"""Read `rules/*.yml` into a validated `RuleSet`, or raise `RulesInvalid` listing every
problem found, each pointing at its file, line and column (one line each; wrapped here):

    rules/statuses.yml:14:5: statuses.is_new.rule.all[1].status: unknown status
    'is_exsting' (did you mean 'is_existing'?)

YAML is composed into nodes (which carry their position) and turned into plain data while
the position of every key and value is recorded by its key path. Each piece is validated by
the pydantic models of `cmdm_admin.rules` on its own, so one bad status does not hide the
errors of the others; a pydantic error's `loc` is a key path, which gives its position.
Then the references between pieces are checked.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from cmdm_admin.errors import CmdmError
from cmdm_admin.rules import (
    BASE_TRACKED_COLUMNS,
    COMBINATORS,
    CONTRACT_CONDITIONS,
    EVENT_CONDITIONS,
    NODE_KINDS,
    NOT_IN_ANNUAL,
    PRESENCE_CONDITIONS,
    SCHEMA_VERSION,
    SECTIONS,
    ConfigName,
    ConfigRef,
    Contract,
    Number,
    Rule,
    RuleSet,
    Source,
    SourceName,
    Status,
    StatusName,
    describe,
)

KeyPath = tuple[str | int, ...]

#: Rule files are named *.yml; files starting with a dot are ignored.
RULE_FILE_SUFFIX = ".yml"
#: Deeper nesting than this is certainly a mistake (and would exhaust the stack).
MAX_DEPTH = 64
#: Bound on YAML nodes per file, after alias expansion ("billion laughs").
MAX_NODES = 100_000

_TOP_LEVEL_KEYS = ("schema_version", *SECTIONS)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_KEY = re.compile(r"[^\s.\[\]'\"]+")


@dataclass(frozen=True)
class RuleIssue:
    """One problem in the rules: where it is and what is wrong."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str


def format_issue(issue: RuleIssue) -> str:
    """`file:line:col: key.path: message` (position and path left out when unknown)."""
    where = issue.file
    if issue.line is not None:
        where += f":{issue.line}:{issue.column or 1}"
    parts = [where, issue.path, issue.message] if issue.path else [where, issue.message]
    return ": ".join(parts)


class RulesInvalid(CmdmError):
    """The rules cannot be used; `errors` lists every problem found."""

    def __init__(self, errors: list[RuleIssue]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        lines = "\n".join(format_issue(issue) for issue in self.errors)
        super().__init__(
            f"the rules are invalid ({count} error{'' if count == 1 else 's'}):\n{lines}",
            hint="fix the places listed above",
        )


def load_rules(rules_dir: Path) -> RuleSet:
    """Read and validate every `*.yml` file of `rules_dir`, in file-name order."""
    rules_dir = Path(rules_dir)
    origin = _display(rules_dir) + "/"
    if not rules_dir.exists():
        raise RulesInvalid([RuleIssue(origin, None, None, "", "rules directory not found")])
    if not rules_dir.is_dir():
        raise RulesInvalid([RuleIssue(origin, None, None, "", "not a directory")])
    try:
        entries = sorted(rules_dir.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise RulesInvalid(
            [RuleIssue(origin, None, None, "", f"cannot list the directory: {_os_reason(exc)}")]
        ) from None
    loader = _Loader(origin)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        display = _display(entry)
        if entry.suffix.lower() in (".yaml", ".yml") and entry.suffix != RULE_FILE_SUFFIX:
            loader.add(
                display,
                None,
                "",
                f"rule files are named *{RULE_FILE_SUFFIX}: rename it to "
                f"{entry.stem}{RULE_FILE_SUFFIX} or move it out of {origin}",
            )
            continue
        if entry.suffix != RULE_FILE_SUFFIX:
            continue
        try:
            raw = entry.read_bytes()
        except OSError as exc:
            loader.add(display, None, "", f"cannot read file: {_os_reason(exc)}")
            loader.broken = True
            continue
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            loader.add(display, _byte_position(raw, exc.start), "", "file is not UTF-8 text")
            loader.broken = True
            continue
        loader.files.append(_File(entry.name, display, text))
    return loader.run()


def load_rules_from_texts(files: Mapping[str, str], origin: str = "rules/") -> RuleSet:
    """Validate rule files given as text, by file name (e.g. a deployment's recorded rules).

    They are read in sorted name order; messages name them `origin + name`.
    """
    loader = _Loader(origin)
    for name in sorted(files):
        loader.files.append(_File(name, origin + name, files[name]))
    return loader.run()


def summary(ruleset: RuleSet) -> str:
    """One line: `rules/ OK: 3 files, 3 sources, 7 statuses (2 annual), on_missing=suspend`."""

    def count(n: int, word: str, plural: str) -> str:
        return f"{n} {word if n == 1 else plural}"

    return (
        f"{ruleset.origin} OK: {count(len(ruleset.files), 'file', 'files')}, "
        f"{count(len(ruleset.sources), 'source', 'sources')}, "
        f"{count(len(ruleset.statuses), 'status', 'statuses')} "
        f"({len(ruleset.annual_statuses)} annual), on_missing={ruleset.contract.on_missing}"
    )


def locate(
    ruleset: RuleSet, path: KeyPath, on: Literal["key", "value"] = "value"
) -> tuple[str, int | None, int | None]:
    """`(file, line, column)` of the value (or key) at `path` in the rules, e.g.
    `("rules/config.yml", 18, 12)` for `("sources", "award", "table")`; a path that was not
    read (a default) gives the place of its nearest parent. For checks made after loading,
    such as the catalog check: their issues point where the loader's own would."""
    if not ruleset._positions:  # built by hand, not by the loader: read its texts once
        ruleset._positions = _reparse_positions(ruleset)
    positions = ruleset._positions
    for end in range(len(path), -1, -1):
        found = positions.get(tuple(path[:end]))
        if found is not None:
            file, value, key = found
            line, column = key if on == "key" and key is not None else value
            return file, line, column
    return ruleset.origin, None, None


def issue_at(
    ruleset: RuleSet, path: KeyPath, message: str, on: Literal["key", "value"] = "value"
) -> RuleIssue:
    """A `RuleIssue` about the key path `path` of a loaded rule set, located by `locate`."""
    file, line, column = locate(ruleset, path, on)
    return RuleIssue(file, line, column, _format_path(path), message)


# --- reading YAML with positions ----------------------------------------------------------


Position = tuple[int, int]


@dataclass
class _Spot:
    value: Position
    key: Position | None


@dataclass
class _File:
    name: str
    display: str
    text: str
    data: Any = None
    spots: dict[KeyPath, _Spot] = field(default_factory=dict)
    parsed: bool = False

    def position(self, path: KeyPath, on: Literal["key", "value"] = "value") -> Position:
        """Position of the value (or key) at `path`, else of its nearest recorded parent."""
        for end in range(len(path), -1, -1):
            spot = self.spots.get(path[:end])
            if spot is not None:
                if on == "key" and spot.key is not None:
                    return spot.key
                return spot.value
        return (1, 1)


class _Composer:
    """Turns composed YAML nodes into plain data, recording positions in `file.spots`."""

    def __init__(self, file: _File, loader: _Loader) -> None:
        self.file = file
        self.loader = loader
        self.constructor = yaml.constructor.SafeConstructor()
        self.nodes = 0
        self.failed = False

    def problem(self, mark: Any, path: KeyPath, message: str) -> None:
        self.loader.add(self.file.display, _mark(mark), _format_path(path), message)

    def fail(self, mark: Any, path: KeyPath, message: str) -> None:
        """A problem that makes the file's content unusable: it is not validated further."""
        if not self.failed or "YAML nodes" not in message:
            self.problem(mark, path, message)
        self.failed = True

    def convert(
        self, node: yaml.Node, path: KeyPath, key: Position | None, active: frozenset[int]
    ) -> Any:
        self.file.spots[path] = _Spot(_mark(node.start_mark), key)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fail(node.start_mark, path, f"more than {MAX_NODES} YAML nodes")
            return None
        if len(path) > MAX_DEPTH:
            self.fail(node.start_mark, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        if id(node) in active:
            self.fail(node.start_mark, path, "a YAML alias refers to its own parent")
            return None
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, active | {id(node)})
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                self.fail(node.start_mark, path, f"unsupported YAML tag {node.tag!r}")
            return [
                self.convert(item, (*path, index), None, active | {id(node)})
                for index, item in enumerate(node.value)
            ]
        try:
            return self.constructor.construct_object(node, deep=True)
        except Exception as exc:  # any constructor failure is a problem of the file
            reason = getattr(exc, "problem", None) or str(exc)
            self.fail(node.start_mark, path, f"cannot read this value: {reason}")
            return None

    def mapping(self, node: yaml.MappingNode, path: KeyPath, active: frozenset[int]) -> Any:
        if node.tag != _MAP_TAG:
            self.fail(node.start_mark, path, f"unsupported YAML tag {node.tag!r}")
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.fail(key_node.start_mark, path, "YAML merge keys (<<) are not supported")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node.start_mark, path, "a key must be a plain name")
                continue
            key = key_node.value
            where = _mark(key_node.start_mark)
            if key in result:
                first = self.file.spots[(*path, key)].key or (0, 0)
                self.problem(
                    key_node.start_mark,
                    (*path, key),
                    f"duplicate key {key!r} (first defined at line {first[0]}, column {first[1]})",
                )
                continue
            result[key] = self.convert(value_node, (*path, key), where, active)
        return result


def _mark(mark: Any) -> Position:
    return (mark.line + 1, mark.column + 1)


def _byte_position(raw: bytes, offset: int) -> Position:
    before = raw[:offset]
    return (before.count(b"\n") + 1, offset - (before.rfind(b"\n") + 1) + 1)


def _text_position(text: str, offset: int) -> Position:
    before = text[:offset]
    return (before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


def _yaml_problem(exc: yaml.YAMLError, text: str) -> tuple[Position, str]:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            context = exc.context
            if exc.context_mark is not None and exc.context_mark is not mark:
                line, column = _mark(exc.context_mark)
                context += f" at {line}:{column}"
            message = f"{message} ({context})"
        if "\\t" in message or "\t" in message:
            message += "; indent with spaces, not tabs"
        position = _mark(mark) if mark is not None else (1, 1)
        return position, f"invalid YAML: {message}"
    if isinstance(exc, yaml.reader.ReaderError):
        return _text_position(text, exc.position), (
            f"invalid YAML: unacceptable character #x{exc.character:04x}"
            if isinstance(exc.character, int)
            else "invalid YAML: unacceptable character"
        )
    return (1, 1), f"invalid YAML: {exc}"


# --- locating and wording pydantic errors -------------------------------------------------


def _format_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part) and part.isprintable():
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _suggest(word: Any, candidates: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _resolve(data: Any, loc: KeyPath) -> KeyPath:
    """The longest prefix of `loc` (skipping pydantic's own loc parts) that exists in data."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_mapping = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
            path.append(part)
    return tuple(path)


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _type_at(tp: Any, loc: KeyPath) -> Any:
    """The annotation found by following `loc` from the type `tp`, or None."""
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {info.alias or name: info for name, info in tp.model_fields.items()}
            if part not in fields:
                return None
            tp = fields[part].annotation
        elif get_origin(tp) is tuple and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
    return _unwrap(tp)


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _wording(error: Any, root: Any, rel: KeyPath) -> tuple[str, Literal["key", "value"]]:
    """What a pydantic error means for a rules author, and whether it is about a key."""
    kind = error["type"]
    value = error.get("input")
    if kind == "cmdm":
        return error["ctx"]["reason"], "value"
    if kind == "missing":
        return f"missing required key {rel[-1]!r}", "key"
    if kind == "extra_forbidden":
        parent = _unwrap(_type_at(root, rel[:-1]))
        key = rel[-1]
        if parent is Rule:
            hint = _suggest(key, NODE_KINDS) or f"; expected one of: {', '.join(NODE_KINDS)}"
            return f"unknown condition type {key!r}{hint}", "key"
        if isinstance(parent, type) and issubclass(parent, BaseModel):
            names = _field_names(parent)
            hint = _suggest(key, names) or f"; expected one of: {', '.join(names)}"
            return f"unknown key {key!r}{hint}", "key"
        return f"unknown key {key!r}", "key"
    if kind == "literal_error":
        literal = _type_at(root, rel)
        allowed = [str(a) for a in get_args(literal)] if get_origin(literal) is Literal else []
        if not allowed:
            allowed = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", ""))
        shown = repr(value) if isinstance(value, str) else describe(value)
        return (
            f"invalid value {shown}{_suggest(value, allowed)}; expected one of: "
            + ", ".join(allowed)
        ), "value"
    if kind == "too_short":
        if rel and rel[-1] in ("all", "any"):
            return f"{rel[-1]} needs at least one rule node, got an empty list", "value"
        return "must not be empty", "value"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a mapping, got {describe(value)}", "value"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list, got {describe(value)}", "value"
    if kind == "string_type":
        return f"expected a string, got {describe(value)}", "value"
    if kind == "bool_type":
        return f"expected true or false, got {describe(value)}", "value"
    return error["msg"], "value"


# --- the loader ---------------------------------------------------------------------------


class _Loader:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.files: list[_File] = []
        self.issues: list[RuleIssue] = []
        self.broken = False  # some file could not be read as YAML at all
        self.owner: dict[str, _File] = {}
        self.config: dict[str, int | float] = {}
        self.sources: dict[str, Source] = {}
        self.contract: Contract | None = None
        self.statuses: dict[str, Status] = {}

    # reporting

    def add(self, file: str, position: Position | None, path: str, message: str) -> None:
        line, column = position if position is not None else (None, None)
        self.issues.append(RuleIssue(file, line, column, path, message))

    def at(
        self,
        section: str,
        path: KeyPath,
        message: str,
        on: Literal["key", "value"] = "value",
    ) -> None:
        """An issue at `path` inside the file that defines `section`."""
        file = self.owner[section]
        self.add(file.display, file.position(path, on), _format_path(path), message)

    def validate(self, section: str, tp: Any, data: Any, prefix: KeyPath) -> Any:
        """`data` validated as `tp`, or None after reporting each error at its place."""
        try:
            return _adapter(tp).validate_python(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            locs = [tuple(error["loc"]) for error in errors]
            for error in errors:
                rel = tuple(error["loc"])
                if error["type"] == "too_short" and any(
                    len(loc) > len(rel) and loc[: len(rel)] == rel for loc in locs
                ):
                    continue  # pydantic counts only the valid items; their errors say more
                message, on = _wording(error, tp, rel)
                if error.get("input", ...) is None:
                    on = "key"  # an empty value has no place of its own: show its key
                path = _resolve(self.owner[section].data, (*prefix, *rel))
                self.at(section, path, message, on)
            return None

    # the steps

    def run(self) -> RuleSet:
        if not self.files and not self.issues:
            self.add(self.origin, None, "", f"no rule files (*{RULE_FILE_SUFFIX}) found")
        for file in self.files:
            self.parse(file)
        present = [s for s in SECTIONS if s in self.owner]
        if not self.broken and self.files:
            for section in SECTIONS:
                if section not in self.owner:
                    self.add(
                        self.origin,
                        None,
                        section,
                        f"no file defines the section {section!r}; each of "
                        f"{', '.join(SECTIONS)} must appear in exactly one file",
                    )
        if "config" in present:
            self.validate_config()
        if "sources" in present:
            self.validate_sources()
        if "contract" in present:
            self.contract = self.validate(
                "contract", Contract, self.section("contract"), ("contract",)
            )
        if "statuses" in present:
            self.validate_statuses()
        if "sources" in present:
            self.check_sources()
        if self.contract is not None:
            self.check_contract(self.contract)
        if "statuses" in present:
            self.check_statuses()
        if self.issues:
            raise RulesInvalid(self.sorted_issues())
        assert self.contract is not None
        ruleset = RuleSet(
            config=self.config,
            sources=self.sources,
            contract=self.contract,
            statuses=self.statuses,
            files={f.name: f.text for f in self.files},
            origin=self.origin,
        )
        ruleset._positions = _position_map(self.owner)
        return ruleset

    def sorted_issues(self) -> list[RuleIssue]:
        order = {f.display: i for i, f in enumerate(self.files)}
        unique = list(dict.fromkeys(self.issues))
        return sorted(
            unique, key=lambda i: (order.get(i.file, len(order)), i.line or 0, i.column or 0)
        )

    def parse(self, file: _File) -> None:
        try:
            node = yaml.compose(file.text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            position, message = _yaml_problem(exc, file.text)
            self.add(file.display, position, "", message)
            self.broken = True
            return
        except RecursionError:
            self.add(file.display, (1, 1), "", f"nested more than {MAX_DEPTH} levels deep")
            self.broken = True
            return
        if node is None:
            self.add(
                file.display,
                (1, 1),
                "",
                f"empty file; expected a mapping starting with schema_version: {SCHEMA_VERSION}",
            )
            return
        composer = _Composer(file, self)
        file.data = composer.convert(node, (), None, frozenset())
        if composer.failed:
            self.broken = True
            return
        file.parsed = True
        if not isinstance(file.data, dict):
            self.add(
                file.display,
                _mark(node.start_mark),
                "",
                f"expected a mapping of sections at the top level, got {describe(file.data)}",
            )
            return
        self.check_top_level(file)

    def check_top_level(self, file: _File) -> None:
        data = file.data
        if "schema_version" not in data:
            self.add(
                file.display,
                (1, 1),
                "",
                f"missing schema_version: the file must start with "
                f"schema_version: {SCHEMA_VERSION}",
            )
        else:
            version = data["schema_version"]
            if type(version) is not int or version != SCHEMA_VERSION:
                shown = repr(version) if isinstance(version, str) else describe(version)
                if type(version) is int:
                    shown = str(version)
                self.add(
                    file.display,
                    file.position(("schema_version",)),
                    "schema_version",
                    f"unsupported schema_version {shown}; this cmdm reads "
                    f"schema_version: {SCHEMA_VERSION}",
                )
        for key in data:
            if key == "schema_version":
                continue
            if key not in SECTIONS:
                hint = _suggest(key, _TOP_LEVEL_KEYS) or ""
                self.add(
                    file.display,
                    file.position((key,), "key"),
                    _format_path((key,)),
                    f"unknown top-level key {key!r}{hint}; expected: " + ", ".join(_TOP_LEVEL_KEYS),
                )
            elif key in self.owner:
                first = self.owner[key]
                line, column = first.position((key,), "key")
                self.add(
                    file.display,
                    file.position((key,), "key"),
                    key,
                    f"section {key!r} is already defined in {first.display}:{line}:{column}; "
                    "a section may appear in only one file",
                )
            else:
                self.owner[key] = file

    def section(self, section: str) -> Any:
        return self.owner[section].data[section]

    def section_mapping(self, section: str, what: str) -> dict[str, Any]:
        data = self.section(section)
        if isinstance(data, dict):
            return data
        self.at(section, (section,), f"expected a mapping of {what}, got {describe(data)}")
        return {}

    def raw(self, section: str) -> dict[str, Any]:
        """The section as written (a mapping), whether or not it is valid."""
        if section not in self.owner:
            return {}
        data = self.section(section)
        return data if isinstance(data, dict) else {}

    # validation of each piece

    def validate_name(self, section: str, tp: Any, name: str) -> bool:
        try:
            _adapter(tp).validate_python(name)
        except ValidationError as exc:
            message, _ = _wording(exc.errors(include_url=False)[0], tp, ())
            self.at(section, (section, name), message, "key")
            return False
        return True

    def validate_config(self) -> None:
        for name, value in self.section_mapping("config", "name: number").items():
            name_ok = self.validate_name("config", ConfigName, name)
            number = self.validate("config", Number, value, ("config", name))
            if name_ok and number is not None:
                self.config[name] = number

    def validate_sources(self) -> None:
        for name, value in self.section_mapping("sources", "name: source").items():
            name_ok = self.validate_name("sources", SourceName, name)
            source = self.validate("sources", Source, value, ("sources", name))
            if name_ok and source is not None:
                self.sources[name] = source

    def validate_statuses(self) -> None:
        for name, value in self.section_mapping("statuses", "name: status").items():
            name_ok = self.validate_name("statuses", StatusName, name)
            status = self.validate("statuses", Status, value, ("statuses", name))
            if name_ok and status is not None:
                self.statuses[name] = status

    # references between pieces

    def source_kind(self, name: str) -> Any:
        raw = self.raw("sources").get(name)
        return raw.get("kind") if isinstance(raw, dict) else None

    def facts_sources(self) -> list[str]:
        return [name for name in self.raw("sources") if self.source_kind(name) == "facts"]

    def is_annual(self, status: str) -> bool:
        raw = self.raw("statuses").get(status)
        return isinstance(raw, dict) and raw.get("annual") is True

    def grain_of(self, status: str) -> str | None:
        raw = self.raw("statuses").get(status)
        grain = raw.get("grain") if isinstance(raw, dict) else None
        return grain if isinstance(grain, str) else None

    def check_sources(self) -> None:
        facts = self.facts_sources()
        if not facts:
            self.at(
                "sources",
                ("sources",),
                "no source has kind: facts; exactly one must (the monthly fact table)",
                "key",
            )
        for extra in facts[1:]:
            self.at(
                "sources",
                ("sources", extra, "kind"),
                f"only one source may have kind: facts; {facts[0]!r} already has it",
            )
        if facts and facts[0] in self.sources and self.sources[facts[0]].keys.plan_code is None:
            self.at(
                "sources",
                ("sources", facts[0], "keys"),
                "the facts source must map plan_code: the contract key is "
                "(company_id, plan_code, product_line_code)",
                "key",
            )

    def check_source(self, section: str, path: KeyPath, name: str, kind: str) -> Source | None:
        """The source `name` used by a condition of type `kind`, if it suits it."""
        if "sources" not in self.owner:  # reported already; nothing to check against
            return None
        names = list(self.raw("sources"))
        here = (*path, kind, "source")
        if name not in names:
            hint = _suggest(name, names) or (
                f"; defined sources: {', '.join(names)}" if names else ""
            )
            self.at(section, here, f"unknown source {name!r}{hint}")
            return None
        actual = self.source_kind(name)
        if kind in EVENT_CONDITIONS and actual == "facts":
            self.at(section, here, f"{kind} needs an events source; {name!r} is the facts source")
            return None
        if kind in PRESENCE_CONDITIONS and actual == "events":
            facts = self.facts_sources()
            also = f" (the facts source is {facts[0]!r})" if facts else ""
            self.at(
                section,
                here,
                f"{kind} reads the facts source; {name!r} is an events source{also}",
            )
            return None
        return self.sources.get(name)

    def check_config_ref(
        self, section: str, path: KeyPath, value: Any, *, count: bool = False
    ) -> None:
        if not isinstance(value, ConfigRef) or "config" not in self.owner:
            return
        names = list(self.raw("config"))
        name = value.config
        if name not in names:
            hint = _suggest(name, names) or (
                f"; defined config names: {', '.join(names)}" if names else ""
            )
            self.at(section, (*path, "config"), f"unknown config {name!r}{hint}")
        elif count and name in self.config:
            number = self.config[name]
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                self.at(
                    section,
                    (*path, "config"),
                    f"config {name!r} is {number}; this needs a whole number of at least 1",
                )

    def check_rule(
        self,
        section: str,
        base: KeyPath,
        rule: Rule,
        status_name: str | None = None,
        status: Status | None = None,
    ) -> None:
        """The references of every node of `rule` (a status's, or a contract case's)."""
        for rel, node in rule.walk():
            kind = node.kind
            here = (*base, *rel)
            if kind in COMBINATORS:
                continue
            body = node.body
            if status is None and kind not in CONTRACT_CONDITIONS:
                self.at(
                    section,
                    (*here, kind),
                    f"{kind} is not allowed in the contract status rule: a contract's status "
                    "depends only on its own facts of the month (allowed: "
                    + ", ".join((*CONTRACT_CONDITIONS, *COMBINATORS))
                    + ")",
                    "key",
                )
                continue
            if status is not None and status.annual and kind in NOT_IN_ANNUAL:
                self.at(
                    section,
                    (*here, kind),
                    f"{kind} is not allowed in an annual status: annual statuses are evaluated "
                    "once a year at the reference month; make it a monthly status",
                    "key",
                )
                continue
            if kind == "top_n" and (status is None or not status.annual):
                self.at(
                    section,
                    (*here, kind),
                    "top_n is allowed only in annual statuses (annual: true)",
                    "key",
                )
            if kind in EVENT_CONDITIONS:
                source = self.check_source(section, here, body.source, kind)
                if source is not None and status is not None:
                    self.check_match(section, (*here, kind), body.match, source, status, body)
            elif kind in PRESENCE_CONDITIONS and body.source is not None:
                self.check_source(section, here, body.source, kind)
            elif kind == "field_compare":
                self.check_config_ref(section, (*here, kind, "value"), body.value)
            elif kind == "top_n":
                self.check_config_ref(section, (*here, kind, "n"), body.n, count=True)
            elif kind == "status":
                self.check_status_ref(section, (*here, kind), body, status_name, status)

    def check_match(
        self,
        section: str,
        path: KeyPath,
        match: tuple[str, ...] | None,
        source: Source,
        status: Status,
        body: Any,
    ) -> None:
        grain_keys = status.keys
        source_name = body.source
        if match is None:
            missing = [k for k in grain_keys if k not in source.keys.names]
            if missing:
                self.at(
                    section,
                    path,
                    f"source {source_name!r} has no {', '.join(missing)} key, which "
                    f"{_grain_text(status)} matches on; map it in the source's keys or give "
                    "match:",
                    "key",
                )
            return
        for index, key in enumerate(match):
            if key not in grain_keys:
                self.at(
                    section,
                    (*path, "match", index),
                    f"{key!r} is not part of the key of {_grain_text(status)} "
                    f"({', '.join(grain_keys)})",
                )
            elif key not in source.keys.names:
                self.at(
                    section,
                    (*path, "match", index),
                    f"source {source_name!r} has no key {key!r} "
                    f"(its keys: {', '.join(source.keys.names)})",
                )

    def check_status_ref(
        self,
        section: str,
        path: KeyPath,
        target: str,
        status_name: str | None,
        status: Status | None,
    ) -> None:
        names = list(self.raw("statuses"))
        if target not in names:
            hint = _suggest(target, names)
            self.at(section, path, f"unknown status {target!r}{hint}")
        elif status is not None and status.annual and not self.is_annual(target):
            self.at(
                section,
                path,
                f"annual status {status_name!r} may read only annual statuses; "
                f"{target!r} is monthly",
            )
        elif (
            status is not None
            and status.annual
            and _GRAINS.index(self.grain_of(target) or "plan") > _GRAINS.index(status.decided_grain)
        ):
            # A year's decision is stored per key of each status's grain (DESIGN §4,
            # "Annual statuses are data"): a finer status has no single value at a coarser key.
            self.at(
                section,
                path,
                f"annual status {status_name!r} ({_grain_text(status)}) may read only "
                f"annual statuses of its own grain or a coarser one; {target!r} has "
                f"{self.grain_of(target) or 'no grain (the contract key)'}",
            )
        elif (
            status is not None
            and not status.annual
            and not self.is_annual(target)
            and self.grain_of(target) not in (None, status.grain)
        ):
            # A monthly status is evaluated once per key of its grain (or of the row); a
            # monthly status pinned to another grain has no single value there.
            self.at(
                section,
                path,
                f"monthly status {status_name!r} ({_grain_text(status)}) may read only "
                f"monthly statuses of its own grain or without one; {target!r} has grain "
                f"{self.grain_of(target)}",
            )

    def check_contract(self, contract: Contract) -> None:
        section = "contract"
        base: KeyPath = ("contract",)
        names = list(self.raw("sources"))
        if "sources" not in self.owner:
            pass
        elif contract.source not in names:
            hint = _suggest(contract.source, names)
            self.at(section, (*base, "source"), f"unknown source {contract.source!r}{hint}")
        elif self.source_kind(contract.source) != "facts":
            facts = self.facts_sources()
            also = f" ({facts[0]!r})" if facts else ""
            self.at(
                section,
                (*base, "source"),
                f"the contract reads the facts source{also}; {contract.source!r} is not it",
            )
        values = list(contract.status_values)
        for index, value in enumerate(values):
            if value in values[:index]:
                self.at(section, (*base, "status_values", index), f"{value!r} is listed twice")

        def check_value(path: KeyPath, value: str | None) -> None:
            if value is not None and value not in values:
                self.at(
                    section,
                    path,
                    f"{value!r} is not one of status_values ({', '.join(values)})"
                    + _suggest(value, values),
                )

        for index, case in enumerate(contract.status.cases):
            check_value((*base, "status", "cases", index, "value"), case.value)
            self.check_rule(section, (*base, "status", "cases", index, "when"), case.when)
        check_value((*base, "status", "default"), contract.status.default)
        check_value((*base, "suspended_status"), contract.suspended_status)
        if contract.on_missing == "suspend" and contract.suspended_status is None:
            self.at(
                section,
                base,
                "on_missing: suspend needs suspended_status (the status a key takes in a "
                "loaded month it is absent from)",
                "key",
            )
        self.check_tracked_columns(contract)

    def check_tracked_columns(self, contract: Contract) -> None:
        path: KeyPath = ("contract", "tracked_columns")
        statuses = list(self.raw("statuses"))
        allowed = [*BASE_TRACKED_COLUMNS, *(s for s in statuses if self.is_annual(s))]
        columns = list(contract.tracked_columns)
        for index, column in enumerate(columns):
            if column in columns[:index]:
                self.at("contract", (*path, index), f"{column!r} is listed twice")
            elif column in allowed or "statuses" not in self.owner:
                continue
            elif column in statuses:
                self.at(
                    "contract",
                    (*path, index),
                    f"{column!r} is a monthly status; only annual statuses are stored on "
                    "contract versions",
                )
            else:
                self.at(
                    "contract",
                    (*path, index),
                    f"unknown tracked column {column!r}{_suggest(column, allowed)}; allowed: "
                    + ", ".join(allowed),
                )
        missing = [c for c in BASE_TRACKED_COLUMNS if c not in columns]
        if missing:
            self.at(
                "contract",
                path,
                "tracked_columns must include " + " and ".join(missing),
            )

    def check_statuses(self) -> None:
        for name, status in self.statuses.items():
            self.check_rule("statuses", ("statuses", name, "rule"), status.rule, name, status)
        self.check_cycles()

    def check_cycles(self) -> None:
        """One issue per cycle of `status:` references. graphlib finds one cycle at a time:
        it is shown from its first-defined status and reported at the reference that leads
        back to it, which is then cut before looking again; what is left has no cycle."""
        reads: dict[str, dict[str, KeyPath]] = {name: {} for name in self.statuses}
        for name, status in self.statuses.items():
            for rel, node in status.rule.walk():
                if node.status in self.statuses:
                    path = ("statuses", name, "rule", *rel, "status")
                    reads[name].setdefault(node.status, path)
        defined = list(self.statuses)
        while True:
            try:
                TopologicalSorter(reads).prepare()
                return
            except CycleError as exc:
                cycle = exc.args[1][:0:-1]  # graphlib lists each status before its readers
            first = min(range(len(cycle)), key=lambda i: defined.index(cycle[i]))
            cycle = cycle[first:] + cycle[:first]
            shown = " -> ".join([*cycle, cycle[0]])
            self.at("statuses", reads[cycle[-1]].pop(cycle[0]), f"cycle among statuses: {shown}")


_ADAPTERS: dict[int, TypeAdapter[Any]] = {}


def _adapter(tp: Any) -> TypeAdapter[Any]:
    """A TypeAdapter per type (the types validated here are module constants)."""
    adapter = _ADAPTERS.get(id(tp))
    if adapter is None:
        adapter = _ADAPTERS[id(tp)] = TypeAdapter(tp)
    return adapter


def _display(path: Path) -> str:
    """`path` relative to the current directory when it is below it, else absolute."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


_PositionMap = dict[KeyPath, tuple[str, Position, Position | None]]


def _position_map(owner: Mapping[str, _File]) -> _PositionMap:
    """Every recorded key path of each section, with the file that defines the section."""
    return {
        path: (file.display, spot.value, spot.key)
        for section, file in owner.items()
        for path, spot in file.spots.items()
        if path[:1] == (section,)
    }


def _reparse_positions(ruleset: RuleSet) -> _PositionMap:
    """Positions of a rule set that was not built by the loader, from its file texts."""
    loader = _Loader(ruleset.origin)
    for name in ruleset.files:
        file = _File(name, ruleset.origin + name, ruleset.files[name])
        loader.files.append(file)
        loader.parse(file)
    return _position_map(loader.owner)


def _grain_text(status: Status) -> str:
    """How a message names where a status is evaluated."""
    if status.grain is not None:
        return f"grain {status.grain!r}"
    return "grain 'plan' (no grain)" if status.annual else "every row (no grain)"


#: Grains from coarsest to finest.
_GRAINS = ("company", "product_line", "plan")
