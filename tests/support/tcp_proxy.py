#!/usr/bin/python3
"""A TCP forwarder for tests: kill it (SIGKILL) to drop every connection
through it at once, start it again on the same port to let peers reconnect.

Usage: tcp_proxy.py LISTEN_HOST:PORT TARGET_HOST:PORT ADDR_FILE
(port 0: any free port; the bound address is written to ADDR_FILE)."""
import asyncio
import os
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    listen_host, listen_port = sys.argv[1].rsplit(":", 1)
    target_host, target_port = sys.argv[2].rsplit(":", 1)

    async def handle(client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    server = await asyncio.start_server(handle, listen_host, int(listen_port), reuse_address=True)
    host, port = server.sockets[0].getsockname()[:2]
    tmp = sys.argv[3] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%s:%d\n" % (host, port))
    os.rename(tmp, sys.argv[3])
    async with server:
        await server.serve_forever()


asyncio.run(main())
