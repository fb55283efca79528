"""The ``connector`` commands: list, check, discover, read, write, sync."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from connector_core._cli._packages import connector_packages
from connector_core._cli._records import (
    CsvWriter,
    NdjsonError,
    cast_value,
    caster,
    cell,
    parse_ndjson,
    to_json,
)
from connector_core._cli._sync import (
    SyncBatchError,
    SyncIdentity,
    SyncState,
    SyncStateError,
    load_state,
    read_kwargs,
    run_sync,
)
from connector_core._cli._urls import (
    UsageError,
    has_terminal,
    resolve_url,
    terminal_prompt,
)
from connector_core._errors import ConfigError, ConnectorError, ErrorCode
from connector_core._models import Record, Stream
from connector_core._protocols import Checkable, Connector, Discoverable, Readable, Writable
from connector_core._redaction import redact_url, scrub_secrets
from connector_core._registry import ConnectorNotInstalledError, from_url

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
TABLE_DEFAULT_LIMIT = 100

URL_HELP = (
    "Connector URL (postgresql://..., mongodb://..., kafka://..., https://...). Put a "
    "password in as ${VAR} inside single quotes: the command reads it from the environment "
    "variable VAR (or asks for it, without echo, when VAR is not set), so it is in no "
    "process list or shell history."
)

HINTS: dict[ErrorCode, str] = {
    ErrorCode.CONNECTION_FAILED: "is the server running, and are the host and port right?",
    ErrorCode.AUTHENTICATION: (
        "check the user name and password (pass the password as ${VAR}, see --help)"
    ),
    ErrorCode.PERMISSION_DENIED: "the credentials work but lack the rights for this",
    ErrorCode.NOT_FOUND: "`connector discover URL` lists the streams",
    ErrorCode.TIMEOUT: "the server is slow or unreachable; a URL option may raise the timeout",
    ErrorCode.CIRCUIT_OPEN: "the server failed repeatedly; wait and try again",
    ErrorCode.RATE_LIMITED: "the server is throttling requests; wait and try again",
    ErrorCode.CONFIG: "check the URL and its options",
}

app = typer.Typer(
    name="connector",
    help=(
        "Check, discover, read, write and sync any installed connector by URL.\n\n"
        "Exit codes: 0 ok, 1 the work or check failed, 2 usage error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OutputFormat(StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"
    TABLE = "table"


@dataclass(slots=True)
class Session:
    """What every command shares: flags, consoles, and the secrets not to print."""

    verbose: bool = False
    debug: bool = False
    secrets: set[str] = field(default_factory=set)
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    def scrub(self, text: str) -> str:
        return scrub_secrets(text, sorted(self.secrets, key=len, reverse=True))

    def fail(self, code: int, message: str, hint: str | None = None) -> NoReturn:
        sys.stderr.write(f"error: {self.scrub(message)}\n")
        if hint:
            sys.stderr.write(f"hint: {self.scrub(hint)}\n")
        if self.debug:
            text = "".join(traceback.format_exc())
            if text.strip() != "NoneType: None":
                sys.stderr.write(self.scrub(text))
        raise typer.Exit(code)


class _ScrubFilter(logging.Filter):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.session.scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.session.scrub(
                "".join(traceback.format_exception(*record.exc_info))
            )
            record.exc_info = None
        return True


def _configure_logging(session: Session) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_ScrubFilter(session))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    if session.debug:
        root.setLevel(logging.DEBUG)
    elif session.verbose:
        root.setLevel(logging.INFO)
    else:  # the command reports failures itself, as one line
        root.setLevel(logging.ERROR)


def _session(ctx: typer.Context) -> Session:
    obj = ctx.find_root().obj
    if not isinstance(obj, Session):  # pragma: no cover - the callback always sets it
        obj = ctx.find_root().obj = Session()
    return obj


def _version(value: bool) -> None:
    if value:
        from connector_core import __version__

        print(f"connector (connector-core {__version__})")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what the connectors do (INFO) to stderr.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Log everything (DEBUG) and show tracebacks.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    session = Session(verbose=verbose or debug, debug=debug)
    ctx.obj = session
    _configure_logging(session)


# -- running a command ---------------------------------------------------------------------


def _execute(session: Session, work: Callable[[], Coroutine[Any, Any, int]]) -> None:
    """Run ``work`` and turn what it raises into one line, a hint and an exit code."""
    code = EXIT_OK
    try:
        code = asyncio.run(work())
    except typer.Exit:
        raise
    except UsageError as exc:
        session.fail(EXIT_USAGE, exc.message, exc.hint)
    except ConnectorNotInstalledError as exc:
        session.fail(EXIT_USAGE, exc.message, "`connector list` shows what is installed")
    except ConfigError as exc:
        session.fail(EXIT_USAGE, exc.message, HINTS[ErrorCode.CONFIG])
    except ConnectorError as exc:
        session.fail(EXIT_FAILED, str(exc), HINTS.get(exc.code))
    except SyncStateError as exc:
        session.fail(EXIT_USAGE, str(exc), "give another --state file, or delete this one")
    except SyncBatchError as exc:
        session.fail(EXIT_FAILED, str(exc), "fix the records or the sink, then run it again")
    except KeyboardInterrupt:
        session.fail(130, "interrupted")
    except BrokenPipeError:
        # The reader went away (`| head`): not an error. Keep Python from complaining at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    except Exception as exc:
        session.fail(
            EXIT_FAILED,
            f"unexpected {type(exc).__name__}: {exc}",
            None if session.debug else "run again with --debug for the traceback",
        )
    raise typer.Exit(code)


def _open(session: Session, url: str) -> Connector:
    resolved = resolve_url(url, prompt=terminal_prompt if has_terminal() else None)
    session.secrets.update(resolved.secrets)
    return from_url(resolved.url)


@contextlib.asynccontextmanager
async def _connected(connector: Connector) -> AsyncIterator[Connector]:
    await connector.connect()
    try:
        yield connector
    finally:
        await connector.disconnect()


def _require(connector: Connector, capability: type[Any], verb: str) -> None:
    if not isinstance(connector, capability):
        raise UsageError(
            f"the {connector.name} connector cannot {verb}",
            "`connector list` shows the connectors; each README says what it supports",
        )


async def _stream_of(connector: Connector, name: str) -> Stream | None:
    """The stream ``name`` from the connector's catalog, or None when it cannot discover."""
    if not isinstance(connector, Discoverable):
        return None
    return (await connector.discover()).stream(name)


# -- list ------------------------------------------------------------------------------------


@app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List installed connector packages (versions, URL schemes) and known ones to install."""
    session = _session(ctx)
    packages = connector_packages()
    if as_json:
        rows = [
            {
                "package": p.name,
                "version": p.version,
                "schemes": list(p.schemes),
                "installed": p.installed,
                **({} if p.installed else {"install": p.install}),
            }
            for p in packages
        ]
        session.out.print_json(json.dumps(rows))
        return
    table = Table(title="Connectors")
    for column in ("package", "version", "URL schemes", "status"):
        table.add_column(column)
    for p in packages:
        status = "installed" if p.installed else f"[dim]{p.install}[/dim]"
        table.add_row(p.name, p.version or "-", ", ".join(p.schemes), status)
    session.out.print(table)


# -- check -----------------------------------------------------------------------------------


@app.command()
def check(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help=URL_HELP, show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate the URL, connect, ping and report. Exit code 1 when the check fails."""
    session = _session(ctx)

    async def work() -> int:
        connector = _open(session, url)
        if isinstance(connector, Checkable):
            result = await connector.check()
        else:  # pragma: no cover - BaseConnector has check(); a bare Connector may not
            async with _connected(connector):
                await connector.ping()
            return EXIT_OK
        if as_json:
            session.out.print_json(session.scrub(result.model_dump_json()))
        elif result.ok:
            latency = f"{result.latency * 1000:.1f} ms" if result.latency is not None else ""
            session.out.print(f"ok: {connector.name} answered in {latency}", markup=False)
        if result.ok:
            return EXIT_OK
        hint = HINTS.get(result.error_code) if result.error_code else None
        message = f"check failed: {result.error}"
        session.fail(EXIT_FAILED, message, hint)

    _execute(session, work)


# -- discover --------------------------------------------------------------------------------


@app.command()
def discover(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help=URL_HELP, show_default=False)],
    stream: Annotated[
        str | None, typer.Argument(help="Show the fields of this stream.", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalog as JSON.")] = False,
) -> None:
    """List the streams of a source (fields, primary key, cursor field, row estimate)."""
    session = _session(ctx)

    async def work() -> int:
        connector = _open(session, url)
        _require(connector, Discoverable, "discover")
        async with _connected(connector):
            assert isinstance(connector, Discoverable)
            catalog = await connector.discover()
        if stream is not None:
            catalog = type(catalog)(streams=(catalog.stream(stream),))
        if as_json:
            session.out.print_json(catalog.model_dump_json())
            return EXIT_OK
        if stream is not None:
            found = catalog.streams[0]
            table = Table(title=found.qualified_name)
            for column in ("field", "type", "nullable", "native type", "key"):
                table.add_column(column)
            for f in found.fields:
                key = "primary" if f.name in found.primary_key else ""
                key = "cursor" if f.name == found.cursor_field and not key else key
                table.add_row(
                    f.name, f.type.value, "yes" if f.nullable else "no", f.native_type or "", key
                )
        else:
            table = Table(title=f"{len(catalog.streams)} streams")
            for column in ("stream", "kind", "fields", "primary key", "cursor", "rows (est.)"):
                table.add_column(column)
            for s in catalog.streams:
                table.add_row(
                    s.qualified_name,
                    s.kind,
                    str(len(s.fields)),
                    ", ".join(s.primary_key),
                    s.cursor_field or "",
                    "" if s.estimated_count is None else str(s.estimated_count),
                )
        session.out.print(table)
        return EXIT_OK

    _execute(session, work)


# -- read ------------------------------------------------------------------------------------


@app.command()
def read(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help=URL_HELP, show_default=False)],
    stream: Annotated[str, typer.Argument(help="The stream (table, collection, topic).")],
    since: Annotated[
        str | None,
        typer.Option(
            help="Only records whose cursor is >= this value (a timestamp, a number).",
            show_default=False,
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        typer.Option(help="The cursor field (default: the one the catalog suggests)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=0, help=f"At most this many records (table: {TABLE_DEFAULT_LIMIT})."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="How to print the records.")
    ] = OutputFormat.NDJSON,
) -> None:
    """Print the records of a stream to stdout, in (cursor, key) order."""
    session = _session(ctx)
    if output is OutputFormat.TABLE and limit is None:
        limit = TABLE_DEFAULT_LIMIT

    async def work() -> int:
        connector = _open(session, url)
        _require(connector, Readable, "read")
        assert isinstance(connector, Readable)
        async with _connected(connector):
            info = await _stream_of(connector, stream) if since or cursor else None
            cursor_field = cursor or (info.cursor_field if info else None)
            if since is not None and cursor_field is None:
                raise UsageError(
                    f"--since needs a cursor field, and stream {stream!r} suggests none",
                    "name it with --cursor FIELD",
                )
            kwargs = read_kwargs(connector, cursor_field)
            if cursor_field and not kwargs:
                raise UsageError(f"the {connector.name} connector takes no --cursor")
            start = cast_value(since, info, cursor_field) if since is not None else None
            records = connector.read(stream, since=start, limit=limit, **kwargs)
            await _print_records(session, records, output)
        return EXIT_OK

    _execute(session, work)


async def _print_records(
    session: Session, records: AsyncIterator[Record], output: OutputFormat
) -> None:
    out = sys.stdout
    try:
        if output is OutputFormat.NDJSON:
            async for record in records:
                out.write(to_json(record) + "\n")
        elif output is OutputFormat.CSV:
            writer = CsvWriter(out)
            async for record in records:
                writer.write(record)
        else:
            rows = [record async for record in records]
            table = Table(show_lines=False)
            for column in rows[0] if rows else ():
                table.add_column(column, overflow="fold", max_width=40)
            for record in rows:
                table.add_row(*(cell(v) for v in record.values()))
            session.out.print(table)
            session.err.print(f"{len(rows)} records", markup=False)
        out.flush()
    finally:
        close = getattr(records, "aclose", None)
        if close is not None:
            await close()


# -- write -----------------------------------------------------------------------------------


@app.command()
def write(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help=URL_HELP, show_default=False)],
    stream: Annotated[str, typer.Argument(help="The stream (table, collection, topic).")],
    batch_size: Annotated[int, typer.Option(min=1, help="Records per write.")] = 1000,
) -> None:
    """Write records given as NDJSON (one JSON object a line) on stdin into a stream.

    Text values are cast to the stream's field types when the connector can discover
    them (timestamps, dates, decimals, UUIDs, base64 for bytes). Each batch is written
    whole or reported failed; the command stops at the first failed batch (exit 1)."""
    session = _session(ctx)

    async def work() -> int:
        connector = _open(session, url)
        _require(connector, Writable, "write")
        assert isinstance(connector, Writable)
        if sys.stdin.isatty():
            session.err.print("reading NDJSON records from stdin (Ctrl-D ends)", markup=False)
        written = batches = 0
        async with _connected(connector):
            cast = caster(await _stream_of(connector, stream))
            batch: list[Record] = []

            async def flush() -> None:
                nonlocal written, batches
                result = await connector.write(stream, batch)
                if not result.ok:
                    raise SyncBatchError(written, batches + 1, result.errors)
                written += result.written
                batches += 1
                batch.clear()

            try:
                for _, record in parse_ndjson(sys.stdin):
                    batch.append(cast(record))
                    if len(batch) >= batch_size:
                        await flush()
            except NdjsonError as exc:
                raise UsageError(
                    f"{exc} ({written} records were written before it)",
                    "give one JSON object per line",
                ) from None
            if batch:
                await flush()
        session.out.print(f"wrote {written} records to {stream}", markup=False)
        return EXIT_OK

    _execute(session, work)


# -- sync ------------------------------------------------------------------------------------


@app.command()
def sync(
    ctx: typer.Context,
    source_url: Annotated[str, typer.Argument(help="The source's URL. " + URL_HELP)],
    stream: Annotated[str, typer.Argument(help="The source stream.")],
    sink_url: Annotated[str, typer.Argument(help="The sink's URL (${VAR} works here too).")],
    state: Annotated[
        Path | None,
        typer.Option(
            help="JSON state file: saved after every written batch; a re-run resumes after "
            "the last record it holds. Without it every run copies everything.",
            show_default=False,
        ),
    ] = None,
    into: Annotated[
        str | None, typer.Option(help="The sink stream (default: the source stream's name).")
    ] = None,
    cursor: Annotated[
        str | None,
        typer.Option(help="The cursor field (default: the catalog's suggestion, else the key)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Records per write.")] = 1000,
) -> None:
    """Copy a stream from a source into a sink, incrementally with --state."""
    session = _session(ctx)

    async def work() -> int:
        source = _open(session, source_url)
        sink = _open(session, sink_url)
        _require(source, Readable, "read")
        _require(sink, Writable, "write")
        assert isinstance(source, Readable)
        assert isinstance(sink, Writable)
        async with _connected(source), _connected(sink):
            info = await _stream_of(source, stream) or Stream(name=stream)
            cursor_field = cursor or info.cursor_field
            if not info.primary_key and cursor_field is None:
                raise UsageError(
                    f"stream {info.qualified_name!r} has no primary key and no cursor field: "
                    "a sync needs an order to resume from",
                    "name a cursor field with --cursor FIELD",
                )
            sink_stream = into or info.name
            identity = SyncIdentity(
                _shown(source_url), info.qualified_name,
                _shown(sink_url), sink_stream,
            )  # fmt: skip
            sync_state = load_state(state, identity) if state else SyncState(identity)
            resumed = sync_state.checkpoint is not None
            total = None if resumed else info.estimated_count
            with _progress(session) as progress:
                task = progress.add_task(f"{info.qualified_name} -> {sink_stream}", total=total)
                outcome = await run_sync(
                    source=source,
                    sink=sink,
                    stream=info,
                    sink_stream=sink_stream,
                    cursor_field=cursor_field,
                    state=sync_state,
                    state_path=state,
                    batch_size=batch_size,
                    on_batch=lambda n: progress.advance(task, n),
                )
        rate = outcome.written / outcome.seconds if outcome.seconds > 0 else 0.0
        where = "resumed from the state file" if resumed else "from the start"
        session.out.print(
            f"synced {outcome.written} records in {outcome.batches} batches "
            f"({where}) in {outcome.seconds:.1f} s, {rate:,.0f} records/s; "
            f"{sync_state.records} in all over {sync_state.runs} runs",
            markup=False,
        )
        if outcome.created:
            session.out.print(f"created {sink_stream} in the sink", markup=False)
        if outcome.added_fields:
            added = ", ".join(outcome.added_fields)
            session.out.print(f"added field(s) {added} to {sink_stream}", markup=False)
        if state is not None:
            session.out.print(f"state saved to {state}", markup=False)
        return EXIT_OK

    _execute(session, work)


def _shown(url: str) -> str:
    """The URL as given (references unexpanded) with a literal password masked."""
    return redact_url(url)


class _RateColumn(ProgressColumn):
    """Records per second (rich's speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} records/s", style="progress.data.speed")


@contextlib.contextmanager
def _progress(session: Session) -> Iterator[Progress]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        console=session.err,
        transient=False,
    )
    with progress:
        yield progress


# -- entry point -----------------------------------------------------------------------------

_GLOBAL_FLAGS = frozenset({"--verbose", "-v", "--debug"})


def run_app(argv: list[str] | None = None) -> None:
    """Run the app; ``--verbose`` and ``--debug`` may come after the command too."""
    args = list(sys.argv[1:] if argv is None else argv)
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in _GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in _GLOBAL_FLAGS] + args[end:]
    app(args=flags + rest, prog_name="connector")
