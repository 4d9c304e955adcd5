"""redis-py against ordo: pub/sub, then resume from the log with XREAD."""
import sys
import redis

port = int(sys.argv[1])
r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
p = r.pubsub()
p.subscribe("py")
assert p.get_message(timeout=5)["type"] == "subscribe"
for i in range(3):
    assert r.publish("py", f"m{i}") == 1
got = []
while len(got) < 3:
    m = p.get_message(timeout=5)
    assert m is not None, "timed out waiting for a message"
    if m["type"] == "message":
        got.append(m["data"])
assert got == ["m0", "m1", "m2"], got
entries = r.xread({"py": "0"})[0][1]
assert [e[1]["payload"] for e in entries] == got, entries
resume = r.xread({"py": entries[1][0]})[0][1]
assert [e[1]["payload"] for e in resume] == ["m2"], resume
assert r.xlen("py") == 3
status = r.execute_command("STATUS")
assert "role" in [s if isinstance(s, str) else s.decode() for s in status], status
print("OK")
