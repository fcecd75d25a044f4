"""Index roll-out, shared by every store's ``ensure_indexes`` (docs/operations.md, "Indexes").

More: docs/architecture.md, "core/index_sync.py".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pymongo
from django.conf import settings
from pymongo import IndexModel
from pymongo.errors import OperationFailure

logger = logging.getLogger(__name__)

OPTIONS = ("unique", "sparse", "partialFilterExpression", "expireAfterSeconds", "collation")
# MongoDB keeps two indexes on one key pattern only when these differ; any other difference is a conflict.
DISTINGUISHING = ("partialFilterExpression", "collation")
CONFLICT_CODES = (85, 86)  # IndexOptionsConflict, IndexKeySpecsConflict
INDEX_NOT_FOUND = 27

IN_PLACE = "in place"
ADOPT = "adopt"
REBUILD = "rebuild"
CREATE = "create"


@dataclass(frozen=True)
class Step:
    """What ``ensure`` does for one wanted index: ``existing`` is the index found (in place, adopted) or
    the one in the way (rebuild); ``reason`` says what differs."""

    name: str
    action: str
    existing: str | None = None
    reason: str = ""

    def describe(self, collection: str) -> str:
        if self.action == CREATE:
            return f"{collection}.{self.name}: missing"
        if self.action == REBUILD:
            return f"{collection}.{self.name}: differs ({self.reason})"
        return f"{collection}.{self.name}: {self.action}"


def key_of(raw: Any) -> tuple[tuple[str, Any], ...]:
    """A key pattern as a tuple of (field, direction), from an IndexModel's document (a mapping) or an
    ``index_information()`` entry (pairs); 1.0 and 1 are the same direction."""
    items = raw.items() if isinstance(raw, Mapping) else raw
    return tuple((str(field), _plain(direction)) for field, direction in items)


def options_of(info: Mapping[str, Any]) -> dict[str, Any]:
    """The options that matter, normalised: false and absent are the same."""
    found: dict[str, Any] = {}
    for name in ("unique", "sparse"):
        if info.get(name):
            found[name] = True
    for name in ("partialFilterExpression", "expireAfterSeconds", "collation"):
        if info.get(name) is not None:
            found[name] = _plain(info[name])
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(name): _plain(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _same(name: str, wanted: Any, existing: Any) -> bool:
    if name == "collation" and wanted is not None and existing is not None:
        # The server lists a collation with every field its locale defaults (strength, caseLevel, ...).
        return all(existing.get(field) == value for field, value in wanted.items())
    return bool(wanted == existing)


def differences(wanted: Mapping[str, Any], existing: Mapping[str, Any], names: Iterable[str] = OPTIONS) -> list[str]:
    """'option: existing -> wanted' for each option that differs."""
    return [
        f"{name} {existing.get(name)!r} -> {wanted.get(name)!r}"
        for name in names
        if not _same(name, wanted.get(name), existing.get(name))
    ]


def plan(existing: Mapping[str, Mapping[str, Any]], wanted: Sequence[IndexModel]) -> list[Step]:
    """One step per wanted index, from the collection's ``index_information()``; nothing is written."""
    wanted_names = {model.document["name"] for model in wanted}
    steps = []
    for model in wanted:
        document = model.document
        name, key, options = document["name"], key_of(document["key"]), options_of(document)
        info = existing.get(name)
        if info is not None:
            if key_of(info["key"]) != key:
                steps.append(Step(name, REBUILD, name, f"key {_show(info['key'])} -> {_show(document['key'])}"))
            elif changed := differences(options, options_of(info)):
                steps.append(Step(name, REBUILD, name, "; ".join(changed)))
            else:
                steps.append(Step(name, IN_PLACE, name))
            continue
        # Not under our name: the same key under another name (a server's own naming, an operator's index).
        # Another wanted index's own name is that index's business, not a candidate.
        same_key = [
            (other, options_of(info))
            for other, info in existing.items()
            if other not in wanted_names and key_of(info["key"]) == key
        ]
        equivalent = next((other for other, found in same_key if not differences(options, found)), None)
        if equivalent is not None:
            steps.append(Step(name, ADOPT, equivalent))
            continue
        in_the_way = next(
            ((other, found) for other, found in same_key if not differences(options, found, DISTINGUISHING)), None
        )
        if in_the_way is not None:
            other, found = in_the_way
            reason = f"as {other}: " + "; ".join(differences(options, found))
            steps.append(Step(name, REBUILD, other, reason))
            continue
        steps.append(Step(name, CREATE))
    return steps


def _show(key: Any) -> str:
    return "{" + ", ".join(f"{field}: {direction}" for field, direction in key_of(key)) + "}"


def timeout_seconds() -> float:
    return settings.INDEX_BUILD_TIMEOUT_MS / 1000


def check(collection: Any, wanted: Sequence[IndexModel]) -> list[Step]:
    """The steps ``ensure`` would take that change something (missing, differing); empty: all in place."""
    existing = collection.index_information()
    return [step for step in plan(existing, wanted) if step.action in (CREATE, REBUILD)]


def described(collection: Any, wanted: Sequence[IndexModel]) -> list[str]:
    """What ``ensure`` would change, one line each ("estimations.rank: missing"); empty: all in place."""
    return [step.describe(collection.name) for step in check(collection, wanted)]


def ensure(collection: Any, wanted: Sequence[IndexModel]) -> list[str]:
    """Make ``collection``'s indexes match ``wanted``; the names they are in place under, in order."""
    existing = collection.index_information()
    with pymongo.timeout(timeout_seconds()):
        names = []
        command_options: dict[str, Any] | None = None
        for step, model in zip(plan(existing, wanted), wanted, strict=True):
            if step.action == IN_PLACE:
                names.append(step.name)
                continue
            if step.action == ADOPT:
                logger.info(
                    "index %s.%s: adopted the equivalent index %s (same key and options)",
                    collection.name,
                    step.name,
                    step.existing,
                )
                names.append(str(step.existing))
                continue
            if command_options is None:
                command_options = _command_options(collection)
            if step.action == REBUILD:
                logger.warning(
                    "index %s.%s differs (%s): dropping %s and building it again",
                    collection.name,
                    step.name,
                    step.reason,
                    step.existing,
                )
                _drop(collection, str(step.existing))
            names.append(_create(collection, model, command_options))
        return names


class OwnIndexes:
    """For a store that owns ``self.collection``: its ``indexes`` put in place and checked."""

    collection: Any
    indexes: Sequence[IndexModel] = ()

    def ensure_indexes(self) -> list[str]:
        return ensure(self.collection, self.indexes)

    def index_differences(self) -> list[str]:
        """What ``ensure_indexes`` would change, one line each; empty: all in place."""
        return described(self.collection, self.indexes)


def _build(collection: Any, model: IndexModel, command_options: dict[str, Any]) -> str:
    """One createIndexes. Only create_indexes carries command options (commitQuorum); without them,
    create_index sends the same command, and is the form the embedded store implements in full."""
    if command_options:
        return str(collection.create_indexes([model], **command_options)[0])
    document = dict(model.document)
    key = list(document.pop("key").items())
    return str(collection.create_index(key, **document))


def _create(collection: Any, model: IndexModel, command_options: dict[str, Any]) -> str:
    try:
        return _build(collection, model, command_options)
    except OperationFailure as exc:
        if exc.code not in CONFLICT_CODES:
            raise
        # The listing showed no conflict, the server found one (another process's index, a server's own
        # reading of an option): drop what is in the way (same name, else same key) and build once more.
        name = model.document["name"]
        blocking = _in_the_way(collection.index_information(), name, key_of(model.document["key"]))
        if blocking is None:
            raise
        logger.warning(
            "index %s.%s: MongoDB refused it (%s, code %s): dropping %s and building it again",
            collection.name,
            name,
            (exc.details or {}).get("codeName", "conflict"),
            exc.code,
            blocking,
        )
        _drop(collection, blocking)
        return _build(collection, model, command_options)


def _in_the_way(existing: Mapping[str, Mapping[str, Any]], name: str, key: tuple) -> str | None:
    if name in existing:
        return name
    return next((other for other, info in existing.items() if other != "_id_" and key_of(info["key"]) == key), None)


def _drop(collection: Any, name: str) -> None:
    try:
        collection.drop_index(name)
    except OperationFailure as exc:
        if exc.code != INDEX_NOT_FOUND:  # another process dropped it first
            raise


def _command_options(collection: Any) -> dict[str, Any]:
    """commitQuorum, sent only to a replica set: a standalone server refuses it."""
    quorum = settings.INDEX_COMMIT_QUORUM
    if not quorum:
        return {}
    try:
        hello = collection.database.client.admin.command("hello")
    except NotImplementedError:  # the embedded store (mongomock) answers no hello: one in-process store
        return {}
    if not hello.get("setName"):
        return {}
    return {"commitQuorum": int(quorum) if quorum.isdigit() else quorum}
