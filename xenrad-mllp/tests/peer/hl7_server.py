"""python-hl7's asyncio MLLP server answering every message with message.create_ack().
Prints "PORT <n>" once listening; exits when stdin closes. Usage: hl7_server.py"""
import asyncio
import sys

import hl7
from hl7.mllp import start_hl7_server


async def handle(reader, writer):
    try:
        while not writer.is_closing():
            msg = await reader.readmessage()
            writer.writemessage(msg.create_ack())
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def main():
    server = await start_hl7_server(handle, "127.0.0.1", 0, encoding="utf-8")
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


asyncio.run(main())
