"""redis-py's RedisCluster across kill -9 of ordo's leader.

Usage: rediscluster_failover.py SECONDS PORT...  (driven by
TestRedisPyClusterFailover). Prints "primary PORT" (the slot master it
found), "receiving" once its subscriber gets messages, then waits for a
"killed" line on stdin while publishing; prints "primary PORT" again once
a publish succeeds after the kill, and finally "result {json}".

What an application does with redis-py 4.3.4 (Debian 12), and so the
script: its ClusterPubSub stays on the node it first chose and keeps
redialling it, so on a connection error the subscriber makes a new pubsub,
which goes to the master of the reloaded slot map. And re-reading the slot
map after a node died can fail inside redis-py (RedisClusterException
"cannot pickle '_thread.lock' object", from a deepcopy of its connection
arguments); a new RedisCluster reads it afresh.
"""
import json
import sys
import threading
import time

from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

limit = time.monotonic() + float(sys.argv[1])
nodes = [ClusterNode("127.0.0.1", int(p)) for p in sys.argv[2:]]
CHANNEL = "py"


ERRORS = (RedisError, RedisClusterException, OSError)


def out(*args):
    print(*args, flush=True)


def new_cluster():
    while True:
        try:
            return RedisCluster(startup_nodes=nodes)
        except ERRORS:
            if time.monotonic() > limit:
                raise
            time.sleep(0.05)


lock = threading.Lock()
received = []
sub_errors = 0
stop = threading.Event()
killed = threading.Event()


def subscriber():
    global sub_errors
    rc = new_cluster()
    p = None
    while not stop.is_set() and time.monotonic() < limit:
        try:
            if p is None:
                p = rc.pubsub()
                p.subscribe(CHANNEL)
            m = p.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if m and m["type"] == "message":
                with lock:
                    received.append(int(m["data"]))
        except ERRORS:
            with lock:
                sub_errors += 1
            if p is not None:
                try:
                    p.close()
                except ERRORS:
                    pass
                p = None
            try:
                rc.nodes_manager.initialize()
            except RedisClusterException:
                rc = new_cluster()
            except ERRORS:
                time.sleep(0.05)


def wait_killed():
    if sys.stdin.readline().strip() == "killed":
        killed.set()


rc = new_cluster()
out("primary", rc.get_node_from_key(CHANNEL).port)
threading.Thread(target=subscriber, daemon=True).start()
threading.Thread(target=wait_killed, daemon=True).start()

acked, failed, killed_at, after_kill, n = [], 0, None, 0, 0
said_receiving = said_primary = False
while time.monotonic() < limit:
    if killed_at is None and killed.is_set():
        killed_at = n  # the first number published after the kill
    try:
        rc.publish(CHANNEL, str(n))
        acked.append(n)
        if killed_at is not None:
            after_kill += 1
            if not said_primary:
                out("primary", rc.get_node_from_key(CHANNEL).port)
                said_primary = True
    except RedisClusterException:
        failed += 1
        rc = new_cluster()
    except ERRORS:
        failed += 1
        time.sleep(0.02)
    n += 1
    if not said_receiving:
        with lock:
            if len(received) >= 50:
                out("receiving")
                said_receiving = True
    if after_kill >= 300:
        break

# Let the last acknowledged messages arrive.
while acked and time.monotonic() < limit:
    with lock:
        if acked[-1] in received:
            break
    time.sleep(0.02)
stop.set()
with lock:
    out("result", json.dumps({"acked": acked, "failed": failed, "received": received,
                              "killed_at": killed_at if killed_at is not None else -1,
                              "subscriber_errors": sub_errors}))
