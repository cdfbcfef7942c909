"""Settings of the listen_events NApp.

Every setting can be overridden by the environment variable of the same
name prefixed with ``FNAA_`` (``FNAA_URL``, ``FNAA_LISTEN``, ...), so that
one NApp folder serves every controller.
"""
import os
import socket

#: Where events go: the `[ingest]` listener of an fnaa host and its topic.
URL = "http://127.0.0.1:8470/events/kytos"

#: The bearer token of `[ingest]`: given here, in FNAA_TOKEN, or in the file
#: named by TOKEN_FILE (preferred: it keeps the secret out of the NApp).
TOKEN = ""
TOKEN_FILE = ""

#: A CA bundle to verify an https URL with (default: the system's).
CA_FILE = ""

#: The events to forward, in EP038's notation: `*` stands for any run of
#: characters; everything else is literal (`.` is a dot). They are
#: translated to the regular expressions Kytos matches whole event names
#: against.
LISTEN = [
    "kytos/topology.*",
    "version/control.initialize",
]

#: The CloudEvents `source` of every event.
SOURCE = "kytos://" + socket.gethostname()

#: Events held while the host is unreachable; beyond it the oldest go.
BUFFER_SIZE = 10000

#: The most events per request.
BATCH_SIZE = 500

#: Seconds between retries while the host is unreachable, doubled after
#: each failure up to MAX_RETRY_INTERVAL.
RETRY_INTERVAL = 1.0
MAX_RETRY_INTERVAL = 30.0

#: Seconds between reminders of an ongoing outage in the log.
ALARM_REMINDER = 60.0

#: Seconds to wait for the host's answer.
TIMEOUT = 10.0


def _override():
    module = globals()
    for name in list(module):
        if not name.isupper():
            continue
        value = os.environ.get("FNAA_" + name)
        if value is None:
            continue
        current = module[name]
        if isinstance(current, list):
            module[name] = [item.strip() for item in value.split(",") if item.strip()]
        elif isinstance(current, int):
            module[name] = int(value)
        elif isinstance(current, float):
            module[name] = float(value)
        else:
            module[name] = value


_override()
