"""Installing connector-core alone pulls in no driver; connector-testing adds only httpx.

Each test builds a clean virtual environment with uv (from PyPI or uv's cache) and
inspects what got installed and what an import loads.
"""

from __future__ import annotations

import json
from pathlib import Path

from install_support import make_venv, run, uv_command

ROOT = Path(__file__).resolve().parents[1]
DRIVERS = ("httpx", "asyncpg", "aiokafka", "pymongo", "websockets", "aiofiles")
# Also driver modules that connector packages might pull in transitively.
DRIVER_MODULES = (*DRIVERS, "aiohttp", "motor", "psycopg", "confluent_kafka")


def installed(python: Path) -> set[str]:
    out = run(*uv_command(), "pip", "list", "--python", python, "--format", "json")
    return {entry["name"].lower().replace("_", "-") for entry in json.loads(out)}


def loaded_modules(python: Path, module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    return set(run(python, "-c", code).split())


def test_connector_core_installs_no_driver(tmp_path: Path) -> None:
    python = make_venv(tmp_path, "./packages/connector-core")
    packages = installed(python)
    assert "connector-core" in packages
    assert "pydantic" in packages
    assert not packages & set(DRIVERS), packages & set(DRIVERS)
    modules = loaded_modules(python, "connector_core")
    assert "connector_core" in modules
    assert not {m.partition(".")[0] for m in modules} & set(DRIVER_MODULES)
    # Without opentelemetry installed, connectors build and run with tracing off.
    code = (
        "import asyncio, connector_core as c\n"
        "class Cfg(c.ConnectorConfig): pass\n"
        "class Con(c.BaseConnector[Cfg]):\n"
        "    config_class = Cfg\n"
        "    async def _connect(self): pass\n"
        "    async def _disconnect(self): pass\n"
        "    async def _ping(self): pass\n"
        "async def main():\n"
        "    async with Con(Cfg()) as con:\n"
        "        assert con._tracer is None\n"
        "        print(await con.run('op', lambda: asyncio.sleep(0, 'ran')))\n"
        "asyncio.run(main())\n"
    )
    assert run(python, "-c", code).strip() == "ran"


def test_connector_testing_pulls_no_driver_but_httpx(tmp_path: Path) -> None:
    python = make_venv(tmp_path, "./packages/connector-core", "./packages/connector-testing")
    packages = installed(python)
    assert {"connector-core", "connector-testing", "httpx"} <= packages
    assert not packages & (set(DRIVERS) - {"httpx"}), packages
    modules = loaded_modules(python, "connector_testing")
    roots = {m.partition(".")[0] for m in modules}
    assert "connector_testing" in roots
    assert not roots & (set(DRIVER_MODULES) - {"httpx"}), roots & set(DRIVER_MODULES)
