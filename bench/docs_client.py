"""Load and fan-out helpers for bench/docs.sh (standard library only).

  load BASE TOKEN N        PUT N documents {cat, n, text} with 16 threads
  fanout DATA TOKEN SUBS WRITES   open SUBS change streams, make WRITES writes 20 ms apart,
                           print each event's delivery latency (receive time - commit time), ms
"""
import asyncio
import http.client
import json
import sys
import threading
import time
import urllib.parse


def load(base, token, n):
    url = urllib.parse.urlparse(base)
    per = (n + 15) // 16

    def worker(w):
        conn = http.client.HTTPConnection(url.hostname, url.port)
        for i in range(w * per, min(n, (w + 1) * per)):
            body = json.dumps({"cat": f"c{i % 100}", "n": i, "text": "x" * 100})
            conn.request("PUT", f"{url.path}/d{i:06d}", body,
                         {"authorization": f"Bearer {token}", "content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status not in (200, 201):
                raise SystemExit(f"PUT d{i}: {r.status}")

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{n / (time.time() - start):.0f}")


async def fanout(data, token, subs, writes):
    url = urllib.parse.urlparse(data)
    latencies = []
    ready = 0
    all_ready = asyncio.Event()

    async def subscriber():
        nonlocal ready
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write((f"GET /_updraft/db/v1/collections/items/changes HTTP/1.1\r\n"
                      f"Host: {url.hostname}\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
        await writer.drain()
        got = 0
        while got < writes:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data:"):
                event = json.loads(line[5:])
                if "position" in event:
                    ready += 1
                    if ready == subs:
                        all_ready.set()
                    continue
                latencies.append(time.time() * 1000 - event["at"])
                got += 1
        writer.close()

    tasks = [asyncio.create_task(subscriber()) for _ in range(subs)]
    await asyncio.wait_for(all_ready.wait(), 60)
    loop = asyncio.get_running_loop()

    def write(i):
        conn = http.client.HTTPConnection(url.hostname, url.port)
        conn.request("PUT", f"/_updraft/db/v1/collections/items/docs/live{i}",
                     json.dumps({"cat": "live", "n": i}),
                     {"authorization": f"Bearer {token}", "content-type": "application/json"})
        conn.getresponse().read()

    for i in range(writes):
        await loop.run_in_executor(None, write, i)
        await asyncio.sleep(0.02)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    for v in latencies:
        print(f"{v:.3f}")


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        asyncio.run(fanout(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
