"""Running the Kingdom process: open the database, serve until a signal, close."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from cmms.common.logging import get_logger
from cmms.kingdom.config import load_config
from cmms.kingdom.db.repository import open_repositories
from cmms.kingdom.server import KingdomPorts, KingdomServer
from cmms.kingdom.settings import KingdomSettings


async def run_kingdom(
    settings: KingdomSettings, *, started: Callable[[KingdomPorts], None] | None = None
) -> None:
    """Serve the public and system APIs until SIGTERM or SIGINT, then drain and close."""
    config = load_config(settings.config_file)
    repositories = await open_repositories(settings.database_url, config)
    server = KingdomServer(
        repositories,
        settings.server_tls(),
        host=settings.host,
        public_port=settings.public_port,
        system_port=settings.system_port,
        health_port=settings.health_port,
        metrics_port=settings.metrics_port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logger = get_logger("cmms.kingdom")
    try:
        ports = await server.start()
        logger.info("kingdom_serving", public_port=ports.public.grpc, system_port=ports.system.grpc)
        if started is not None:
            started(ports)
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop()
        await repositories.close()
