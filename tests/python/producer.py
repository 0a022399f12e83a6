"""A producer in another language, written from docs/PROTOCOL.md only.

Enqueues `py_greet` jobs into a Spool queue with redis-py: one to run now,
one scheduled 300 ms ahead, one with an idempotency key (enqueued twice: the
second call creates nothing and names the first job), and a malformed call
that must be refused without leaving the idempotency key behind. Prints the
ids as one JSON object.

    python3 producer.py REDIS_URL QUEUE SCRIPT_FILE SCRIPT_SHA

SCRIPT_FILE holds the text of `spool protocol script enqueue`, SCRIPT_SHA
what `spool protocol list` prints for it.
"""

import json
import sys
import time
import uuid

import redis

NS = "spool"


def keys(queue, unique=None):
    """enqueue.lua's KEYS, in the order PROTOCOL.md lists them."""
    k = lambda name: f"{NS}:{{{queue}}}:{name}"
    return [
        k("ready"), k("wake"), k("scheduled"), k("jobs"),
        k("idem:" + unique) if unique else k("ready"),
        k("locks"), k("events"), k("settings"), k("followups"),
    ]


def body(queue, name, n):
    """The record without the script-owned head: a JSON object, type first."""
    fields = {
        "type": "py_greet",
        "queue": queue,
        "args": {"name": name, "n": n},
        "created_ms": int(time.time() * 1000),
    }
    return json.dumps(fields, separators=(",", ":"))


def main():
    url, queue, script_file, expected_sha = sys.argv[1:5]
    r = redis.Redis.from_url(url)
    with open(script_file, encoding="utf-8") as f:
        sha = r.script_load(f.read())
    assert sha == expected_sha, f"loaded {sha}, spool protocol list says {expected_sha}"
    r.sadd(f"{{{NS}}}:queues", queue)

    def enqueue(lock, job_id, delay_ms, payload, unique=None):
        return r.evalsha(sha, 9, *keys(queue, unique), lock, job_id, "25", "0", str(delay_ms), payload)

    now_id, later_id, unique_id = (str(uuid.uuid4()) for _ in range(3))
    assert enqueue("0", now_id, 0, body(queue, "ada", 1)) == [1, [now_id.encode()]]
    assert enqueue("0", later_id, 300, body(queue, "grace", 2)) == [1, [later_id.encode()]]
    assert enqueue("60000", unique_id, 0, body(queue, "alan", 3), "welcome-alan") == [1, [unique_id.encode()]]
    again = enqueue("60000", str(uuid.uuid4()), 0, body(queue, "alan", 3), "welcome-alan")
    assert again == [0, [unique_id.encode()]], again

    # A malformed call (the body is not a JSON object) is refused whole: the
    # idempotency key it names stays free.
    try:
        enqueue("60000", str(uuid.uuid4()), 0, "not json", "never-set")
        raise AssertionError("a malformed enqueue was accepted")
    except redis.ResponseError as e:
        assert "spool:" in str(e), e
    assert r.exists(keys(queue, "never-set")[4]) == 0, "the malformed call set its key"

    print(json.dumps({"now": now_id, "later": later_id, "unique": unique_id}))


if __name__ == "__main__":
    main()
