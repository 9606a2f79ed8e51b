"""Runs operation sequences through Python `limits` for tests/conformance.rs.

Reads commands from stdin, one per line, and answers each with one line on
stdout. `new MODE STRATEGY [URI]` starts a sequence on a fresh storage: MODE
`memory` is a `MemoryStorage` under a frozen clock (its background expiry
timer stopped, so an answer never depends on when a thread ran), `redis` a
`RedisStorage` at URI under the real clock. Items are rate strings with `_`
for spaces ("3/2_seconds"). Answers: `1`/`0` for booleans, integers, floats
as `repr`, `ok`, or `error <Type>`.
"""

import sys
import warnings
import time

# limits 4 warns on every use of the elastic expiry limiter.
warnings.showwarning = lambda *args, **kwargs: None

import limits
from limits import storage as storages
from limits import strategies

ORIGIN = 1_700_000_000.0
clock = {"ns": 0, "frozen": False}
_real_time = time.time


def _now():
    if clock["frozen"]:
        return ORIGIN + clock["ns"] / 1e9
    return _real_time()


time.time = _now

STRATEGIES = {
    "fixed": strategies.FixedWindowRateLimiter,
    "moving": strategies.MovingWindowRateLimiter,
    "sliding": getattr(strategies, "SlidingWindowCounterRateLimiter", None),
    "elastic": getattr(strategies, "FixedWindowElasticExpiryRateLimiter", None),
}


def memory_storage():
    cls = storages.MemoryStorage
    for name in dir(cls):
        if name.endswith("__schedule_expiry"):
            setattr(cls, name, lambda self: None)
    storage = cls()
    storage.timer.cancel()
    return storage


def expire_events(storage):
    """What the storage's expiry timer does, at a deterministic moment:
    drops the moving-window entries that expired before now (the timer
    also drops those expiring exactly now, but only when it happens to run
    then; the entry's own rule, `atime >= now - expiry`, still counts
    them)."""
    now = time.time()
    for key, events in list(storage.events.items()):
        live = [event for event in events if event.expiry >= now]
        if live:
            storage.events[key] = live
        else:
            del storage.events[key]


def item(text):
    return limits.parse(text.replace("_", " "))


def fmt(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def main():
    storage = limiter = strategy = None
    out = sys.stdout
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        op, args = words[0], words[1:]
        try:
            if clock["frozen"] and op != "new":
                expire_events(storage)
            if op == "new":
                mode, strategy = args[0], args[1]
                clock["ns"] = 0
                clock["frozen"] = mode == "memory"
                if mode == "memory":
                    storage = memory_storage()
                else:
                    storage = storages.storage_from_string(args[2])
                limiter = STRATEGIES[strategy](storage)
                answer = "ok"
            elif op == "adv":
                clock["ns"] += int(args[0])
                answer = "ok"
            elif op == "hit":
                answer = fmt(limiter.hit(item(args[0]), args[1], cost=int(args[2])))
            elif op == "burst":
                it, n = item(args[0]), int(args[2])
                answer = fmt(sum(1 for _ in range(n) if limiter.hit(it, args[1])))
            elif op == "test":
                answer = fmt(limiter.test(item(args[0]), args[1], cost=int(args[2])))
            elif op == "stats":
                stats = limiter.get_window_stats(item(args[0]), args[1])
                answer = f"{fmt(float(stats.reset_time))} {stats.remaining}"
            elif op == "clear":
                limiter.clear(item(args[0]), args[1])
                answer = "ok"
            elif op == "incr":
                it = item(args[0])
                answer = fmt(
                    storage.incr(it.key_for(args[1]), it.get_expiry(), amount=int(args[2]))
                )
            elif op == "get":
                answer = fmt(storage.get(item(args[0]).key_for(args[1])))
            elif op == "expiry":
                answer = fmt(float(storage.get_expiry(item(args[0]).key_for(args[1]))))
            elif op == "reset":
                storage.reset()
                answer = "ok"
            else:
                answer = f"error unknown-op-{op}"
        except Exception as error:  # the answer is compared, not raised
            answer = f"error {type(error).__name__}"
        out.write(answer + "\n")
        out.flush()


if __name__ == "__main__":
    main()
