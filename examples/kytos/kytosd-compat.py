#!/usr/bin/env python3
"""Starts Kytos 2021.1's kytosd on Python 3.10 and later.

Kytos 2021.1 pins janus 0.4.0, which passes `loop=` to asyncio.Lock,
Condition, Event and Queue; Python 3.10 removed that argument. This shim
drops it, then runs kytosd with the arguments given:

    python3 kytosd-compat.py -c /path/to/kytos.conf
"""
import asyncio
import sys


def _without_loop(cls):
    class Compatible(cls):
        def __init__(self, *args, loop=None, **kwargs):
            super().__init__(*args, **kwargs)

    Compatible.__name__ = cls.__name__
    Compatible.__qualname__ = cls.__qualname__
    return Compatible


if sys.version_info >= (3, 10):
    for _name in ("Lock", "Condition", "Event", "Queue", "Semaphore"):
        setattr(asyncio, _name, _without_loop(getattr(asyncio, _name)))

from kytos.core.kytosd import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
