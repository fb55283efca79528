"""sync_contacts: Chatwoot contacts into a table, with events and checkpoints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connector_adapters._domain import Contact, SourceReference
from connector_adapters._ports import EventPublisher, JsonObject, StateStore
from connector_adapters._sync import (
    IncrementalSync,
    ProgressCallback,
    SourceBatch,
    SyncItem,
    SyncReport,
    _now_iso,
)
from connector_adapters.chatwoot._client import (
    CONTACTS_PER_PAGE,
    ChatwootClient,
    check_sort,
    new_correlation_id,
)
from connector_adapters.chatwoot._models import ChatwootContact
from connector_core import SerializationError, Writable

T = TypeVar("T")

SOURCE_SYSTEM = "chatwoot"
DEFAULT_CONTACTS_TABLE = "chatwoot_contacts"
DEFAULT_SORT = "email"

logger = logging.getLogger("connector_adapters.chatwoot.sync")

CONTACT_COLUMNS: dict[str, str] = {
    "chatwoot_id": "bigint PRIMARY KEY",
    "account_id": "bigint",
    "name": "text",
    "email": "text",
    "phone_number": "text",
    "identifier": "text",
    "blocked": "boolean NOT NULL DEFAULT false",
    "additional_attributes": "jsonb NOT NULL DEFAULT '{}'::jsonb",
    "custom_attributes": "jsonb NOT NULL DEFAULT '{}'::jsonb",
    "created_at": "timestamptz",
    "last_activity_at": "timestamptz",
    "synced_at": "timestamptz",
}
"""The columns of the contacts table ``sync_contacts`` writes (PostgreSQL types)."""


def contacts_table_ddl(table: str = DEFAULT_CONTACTS_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the contacts table (``table`` may be schema.table).

    Names are quoted by connector-postgres (the ``postgres`` extra; ImportError naming it
    when missing). Raises InvalidRequestError for an empty name or a NUL in one.
    """
    try:
        # Here, not at the top: the chatwoot extra alone must import without it.
        from connector_postgres import quote_ident
    except ImportError as exc:  # pragma: no cover - exercised in a clean venv
        raise ImportError(
            "contacts_table_ddl needs the PostgreSQL connector: "
            "pip install 'connector-adapters[postgres]'"
        ) from exc
    quoted = ".".join(quote_ident(part) for part in table.split("."))
    columns = ",\n  ".join(
        f"{quote_ident(name)} {sql_type}" for name, sql_type in CONTACT_COLUMNS.items()
    )
    return f"CREATE TABLE IF NOT EXISTS {quoted} (\n  {columns}\n)"


def to_canonical_contact(contact: ChatwootContact, *, account_id: int | None = None) -> Contact:
    """Map a Chatwoot contact to the canonical :class:`Contact` (with its source reference)."""
    return Contact(
        name=contact.name,
        email=contact.email,
        phone=contact.phone_number,
        external_id=contact.identifier,
        blocked=contact.blocked,
        attributes=dict(contact.custom_attributes),
        additional_attributes=dict(contact.additional_attributes),
        created_at=contact.created_at,
        last_activity_at=contact.last_activity_at,
        sources=(
            SourceReference(
                system=SOURCE_SYSTEM,
                entity_type="contact",
                id=str(contact.id),
                account=str(account_id) if account_id is not None else None,
            ),
        ),
    )


def contact_row(contact: ChatwootContact, *, account_id: int | None = None) -> dict[str, Any]:
    """The table row for a contact. The thumbnail (a signed, changing URL) is left out."""
    return {
        "chatwoot_id": contact.id,
        "account_id": account_id,
        "name": contact.name,
        "email": contact.email,
        "phone_number": contact.phone_number,
        "identifier": contact.identifier,
        "blocked": contact.blocked,
        "additional_attributes": dict(contact.additional_attributes),
        "custom_attributes": dict(contact.custom_attributes),
        "created_at": contact.created_at,
        "last_activity_at": contact.last_activity_at,
    }


@dataclass(slots=True)
class _Pass:
    """What one pass over the contact listing saw."""

    listed: set[int] = field(default_factory=set)
    counts: list[int] = field(default_factory=list)
    """Chatwoot's ``meta.count`` on each listing response of the pass, in order."""
    found: set[int] = field(default_factory=set)
    """Contacts seen before that the listing left out but that exist (read by id)."""
    gone: set[int] = field(default_factory=set)
    """Contacts seen before that the listing left out and that no longer exist."""

    def doubt(self) -> str | None:
        """Why this pass cannot prove it read every contact, or None when it can."""
        confirmed = len(self.listed | self.found)
        if not self.counts:
            # No count to check against: only contacts seen before can be verified.
            return f"missed {len(self.found)} contacts it had seen before" if self.found else None
        first, last = self.counts[0], self.counts[-1]
        if any(count != last for count in self.counts):
            return f"saw Chatwoot's count change during the pass ({first} -> {last})"
        if confirmed < last:
            return f"saw {confirmed} of {last} contacts"
        if confirmed > last:
            return f"saw {confirmed} contacts but Chatwoot counts {last} (deleted during the pass)"
        return None

    def unseen(self) -> int:
        if self.doubt() is None:
            return 0
        if not self.counts:
            return 1
        return max(1, self.counts[-1] - len(self.listed | self.found))


class ChatwootContactSource:
    """Contacts page by page (15 each, in ``sort`` order); the position is the next page.

    Chatwoot pages contacts by offset and its ``sort`` takes one field with no
    tie-breaker (contacts with the same or a NULL email have no stable order), so
    pages shift when contacts are created or deleted before the page being read, and
    a page number is only an approximate place to resume. To lose nothing:

    - a run that resumes at page *R* reads *R* to the end, then scans pages
      1..R-1 again (the sync's fingerprints make unchanged contacts cost no write and
      no event). Whatever page a run resumes at, its first pass reads the whole listing.
    - after each pass, every contact seen before that the pass did not list (those the
      last run saw, kept under ``state_key`` in ``state``, and those earlier passes of
      this run saw) is read by id (``get_contact``): the ones that exist are yielded
      (a shifted page skipped them), the others were deleted.
    - a pass is trusted only when Chatwoot's ``meta.count`` stayed the same on every
      page of it and the contacts it listed plus those found by id number exactly that
      count. Otherwise (a count that changed, ties reordered between requests, contacts
      created behind the scan or deleted during it) it rescans from page 1, up to
      ``max_rescans`` times, and :meth:`unseen` reports the doubt that remains (the
      sync then reports itself incomplete).

    What no check can see: a contact that neither the last run nor this one ever saw,
    hidden by a deletion before the page being read that a creation between the same two
    page requests balances (the count does not move). The next run lists it.

    ``state`` and ``state_key`` go together; without them only the passes of one run
    are checked against each other. Raises the client's ConnectorError, and
    SerializationError for a ``position`` that holds no page number.
    """

    def __init__(
        self,
        client: ChatwootClient,
        *,
        sort: str | None = DEFAULT_SORT,
        correlation_id: str,
        max_rescans: int = 2,
        state: StateStore | None = None,
        state_key: str | None = None,
    ) -> None:
        if max_rescans < 0:
            raise ValueError("max_rescans must be >= 0")
        if (state is None) != (state_key is None):
            raise ValueError("give state and state_key together (or neither)")
        self.client = client
        self.sort = check_sort(sort)
        self.correlation_id = correlation_id
        self.max_rescans = max_rescans
        self.state = state
        self.state_key = state_key
        self._pass = _Pass()

    def unseen(self) -> int:
        """0 when the last pass proved it read every contact; else how many Chatwoot
        counted that it could not confirm (at least 1)."""
        return self._pass.unseen()

    async def _list(self, current: _Pass, page: int) -> list[ChatwootContact]:
        result = await self.client.list_contacts(
            page=page, sort=self.sort, correlation_id=self.correlation_id
        )
        if result.count is not None:
            current.counts.append(result.count)
        current.listed.update(contact.id for contact in result.contacts)
        return list(result.contacts)

    async def _scan(
        self, current: _Pass, start: int, tag: JsonObject
    ) -> AsyncIterator[SourceBatch[ChatwootContact]]:
        page = start
        while contacts := await self._list(current, page):
            page += 1
            yield SourceBatch(items=contacts, position={"page": page, **tag})
        if start > 1:
            logger.info("contacts sync resumed at page %d: verifying pages 1..%d", start, start - 1)
            for page in range(1, start):
                contacts = await self._list(current, page)
                if not contacts:
                    break
                # Resuming here starts a new full circle at page + 1 (see the class doc).
                yield SourceBatch(items=contacts, position={"page": page + 1, "verify": start})

    async def _look_up(
        self, current: _Pass, expected: set[int], position: JsonObject
    ) -> AsyncIterator[SourceBatch[ChatwootContact]]:
        missing = sorted(expected - current.listed)
        if not missing:
            return
        logger.info(
            "contacts sync: %d contacts seen before were not listed; reading them by id",
            len(missing),
        )
        for offset in range(0, len(missing), CONTACTS_PER_PAGE):
            chunk = missing[offset : offset + CONTACTS_PER_PAGE]
            contacts = await _all(
                self.client.get_contact(cid, correlation_id=self.correlation_id) for cid in chunk
            )
            found = [contact for contact in contacts if contact is not None]
            current.found.update(cid for cid, c in zip(chunk, contacts, strict=True) if c)
            current.gone.update(cid for cid, c in zip(chunk, contacts, strict=True) if not c)
            if found:
                yield SourceBatch(items=found, position=position)
        logger.info(
            "contacts sync: %d of them exist (left out by a shifted page), %d were deleted",
            len(current.found), len(current.gone),
        )  # fmt: skip

    async def _known_ids(self) -> set[int]:
        if self.state is None or self.state_key is None:
            return set()
        value = await self.state.get(self.state_key)
        if value is None:
            return set()
        ids = value.get("ids")
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            logger.warning(
                "contacts sync: state %r holds no list of contact ids; ignored (this run "
                "checks only its own passes, and rewrites it)",
                self.state_key,
            )
            return set()
        return set(ids)

    async def _remember(self, ids: set[int]) -> None:
        if self.state is not None and self.state_key is not None:
            await self.state.put(self.state_key, {"ids": sorted(ids), "updated_at": _now_iso()})

    async def batches(
        self, position: JsonObject | None
    ) -> AsyncIterator[SourceBatch[ChatwootContact]]:
        start = _start_page(position)
        expected = await self._known_ids()
        current = self._pass = _Pass()
        last: JsonObject = {"page": start}
        async for batch in self._scan(current, start, {}):
            last = batch.position or last
            yield batch
        rescans = 0
        while True:
            async for batch in self._look_up(current, expected, last):
                yield batch
            reason = current.doubt()
            if reason is None or rescans == self.max_rescans:
                break
            rescans += 1
            logger.warning(
                "contacts sync %s; rescanning (%d of %d)", reason, rescans, self.max_rescans
            )
            expected = (expected | current.listed | current.found) - current.gone
            current = self._pass = _Pass()
            async for batch in self._scan(current, 1, {"rescan": rescans}):
                last = batch.position or last
                yield batch
        # Every contact seen before is now listed, found or gone: what exists is remembered.
        await self._remember(current.listed | current.found)


def _start_page(position: JsonObject | None) -> int:
    if position is None:
        return 1
    page = position.get("page", 1) if isinstance(position, Mapping) else None
    if type(page) is not int or page < 1:
        raise SerializationError(
            f"contacts sync checkpoint position {position!r} holds no page number (an "
            "integer >= 1); delete the sync's checkpoint to start a new pass",
            connector="chatwoot",
        )
    return page


async def _all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await ``calls`` concurrently, in order; the first failure cancels the others and is
    raised as it is (not wrapped in an ExceptionGroup, as a TaskGroup would)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def sync_contacts(
    client: ChatwootClient,
    sink: Writable,
    *,
    publisher: EventPublisher,
    state: StateStore,
    table: str = DEFAULT_CONTACTS_TABLE,
    account_id: int | None = None,
    name: str | None = None,
    sort: str | None = DEFAULT_SORT,
    on_progress: ProgressCallback | None = None,
    correlation_id: str | None = None,
) -> SyncReport:
    """Sync every Chatwoot contact into ``table`` of ``sink``, resumably.

    Reads all pages (Chatwoot has no "changed since" filter on contacts), writes
    only contacts whose content changed since the last run (a fingerprint per
    contact is kept in ``state``), publishes ``contact.created`` /
    ``contact.updated`` events with the canonical contact as payload, and
    checkpoints the next page after each committed page. The sink must upsert on
    ``chatwoot_id`` (a PostgresConnector writing to a table whose primary key is
    ``chatwoot_id`` does; see :func:`contacts_table_ddl`).

    Offset pages shift while other users create and delete contacts, so every pass is
    checked (see :class:`ChatwootContactSource`): a resumed run also re-reads the pages
    before its checkpoint, contacts seen before (the last run's, kept in ``state`` under
    ``<name>:contact-ids``) that a pass did not list are read by id, and a pass whose
    count moved, or whose contacts do not add up to Chatwoot's ``meta.count``, is
    rescanned. Unchanged contacts are neither written nor announced again. The report's
    ``completed`` is True only when every contact present for the whole run was applied;
    it is False (and a WARNING is logged) when the sink rejected records or doubt
    remained after the rescans (``unseen``); the next run then starts a new pass.

    Raises the ConnectorError of the client, sink or state store that failed; a
    re-run resumes from the last committed page.
    """
    cid = new_correlation_id(correlation_id)
    sync_name = name or f"chatwoot-contacts-{account_id or 'default'}-{table}"

    def mapper(contact: ChatwootContact) -> SyncItem:
        try:
            payload = to_canonical_contact(contact, account_id=account_id).model_dump(mode="json")
        except ValueError as exc:  # e.g. attributes nested deeper than pydantic serializes
            raise SerializationError(
                f"contact {contact.id} cannot be published: {exc}", connector="chatwoot"
            ) from exc
        return SyncItem(
            entity_id=str(contact.id),
            record=contact_row(contact, account_id=account_id),
            payload=payload,
        )

    sync: IncrementalSync[ChatwootContact] = IncrementalSync(
        name=sync_name,
        source=ChatwootContactSource(
            client, sort=sort, correlation_id=cid, state=state, state_key=f"{sync_name}:contact-ids"
        ),
        mapper=mapper,
        sink=sink,
        stream=table,
        publisher=publisher,
        state=state,
        source_system=SOURCE_SYSTEM,
        entity_type="contact",
        on_progress=on_progress,
    )
    return await sync.run(correlation_id=cid)
