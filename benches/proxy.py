#!/usr/bin/env python3
"""A loopback TCP proxy that makes a server look far away: it counts the bytes it
forwards each way, and can limit the bandwidth and add a one-way delay to each
direction (the round trip is twice the delay).

    proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT [--mbit RATE] [--delay-ms MS] --counts FILE

FILE is rewritten after every connection closes and on SIGTERM with one line:
`down BYTES up BYTES` (down = server to client). Used by benches/far.sh.
"""
import argparse
import asyncio
import signal
import time

totals = {"down": 0, "up": 0}


def write_counts(path):
    with open(path, "w") as f:
        f.write(f"down {totals['down']} up {totals['up']}\n")


async def pipe(reader, writer, direction, mbit, delay):
    # A reader task stamps chunks as they arrive; the writer releases each one `delay` later,
    # paced to the bandwidth, so latency does not throttle a stream the way a stop-and-wait would.
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic(), data))
            if not data:
                return

    async def write():
        while True:
            stamp, data = await queue.get()
            wait = stamp + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.close()
                return
            totals[direction] += len(data)
            writer.write(data)
            await writer.drain()
            if mbit:
                await asyncio.sleep(len(data) * 8 / (mbit * 1e6))

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, asyncio.CancelledError):
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listen", type=int)
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--mbit", type=float, default=0)
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--counts", required=True)
    a = ap.parse_args()
    delay = a.delay_ms / 1000

    async def handle(cr, cw):
        sr, sw = await asyncio.open_connection(a.host, a.port)
        await asyncio.gather(pipe(cr, sw, "up", a.mbit, delay), pipe(sr, cw, "down", a.mbit, delay))
        write_counts(a.counts)

    server = await asyncio.start_server(handle, "127.0.0.1", a.listen)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    write_counts(a.counts)
    async with server:
        await stop
    write_counts(a.counts)


asyncio.run(main())
