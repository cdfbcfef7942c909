"""The part of listen_events that knows nothing of Kytos: EP038 patterns,
KytosEvent -> CloudEvent, and a forwarder that never blocks the caller.

The forwarder keeps a bounded buffer in memory and one sender thread that
POSTs batches (`application/cloudevents-batch+json`) to the fnaa host's
ingestion listener. The host answers 202 only once the events are on its
disk, so an event leaves the buffer only when it is safe. While the host
is unreachable the sender retries with backoff and logs one alarm line, a
reminder now and then, and one line when delivery resumes. Nothing is kept
across a restart of the controller: EP038 restarts from the real-time
point.
"""
import collections
import datetime
import json
import logging
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid

LOG = logging.getLogger("kytos.napps.fnaa/listen_events")

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"


def translate(pattern):
    """An EP038 pattern (`*` = anything) as the regular expression Kytos
    matches whole names against (`re.match(regex + '$', name)`)."""
    return ".*".join(re.escape(part) for part in pattern.split("*"))


def _plain(value):
    """JSON for what Kytos puts in event content."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _subject(content):
    """The dpid or link id an event is about, if it says."""
    if not isinstance(content, dict):
        return None
    if isinstance(content.get("dpid"), str):
        return content["dpid"]
    for key, attribute in (("switch", "dpid"), ("link", "id"), ("interface", "id")):
        value = content.get(key)
        if value is None:
            continue
        found = getattr(value, attribute, None)
        if found is None and isinstance(value, dict):
            found = value.get(attribute)
        if found is not None:
            return str(found)
    return None


def _rfc3339(timestamp):
    if timestamp is None:
        return None
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=datetime.timezone.utc)
    text = timestamp.astimezone(datetime.timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def to_cloudevent(event, source):
    """A KytosEvent as a CloudEvent in the JSON format (a dict).

    `id` is the event's uuid where the controller gives one (kytos-ng), a
    fresh uuid otherwise (Kytos 2021.1 events have none)."""
    content = event.content if event.content is not None else {}
    cloudevent = {
        "specversion": "1.0",
        "id": str(getattr(event, "id", None) or uuid.uuid4()),
        "source": source,
        "type": event.name,
        "datacontenttype": "application/json",
        "data": json.loads(json.dumps(content, default=_plain)),
    }
    time_ = _rfc3339(getattr(event, "timestamp", None))
    if time_ is not None:
        cloudevent["time"] = time_
    subject = _subject(content)
    if subject is not None:
        cloudevent["subject"] = subject
    return cloudevent


class Forwarder:
    """A bounded buffer and the thread that empties it into the host."""

    def __init__(self, url, token="", ca_file="", buffer_size=10000, batch_size=500,
                 retry_interval=1.0, max_retry_interval=30.0, alarm_reminder=60.0,
                 timeout=10.0):
        self.url = url
        self._token = token
        self._context = None
        if url.startswith("https:"):
            self._context = ssl.create_default_context(cafile=ca_file or None)
        self._buffer = collections.deque(maxlen=max(1, buffer_size))
        self._batch_size = max(1, batch_size)
        self._retry_interval = retry_interval
        self._max_retry_interval = max(retry_interval, max_retry_interval)
        self._alarm_reminder = alarm_reminder
        self._timeout = timeout
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fnaa-forwarder", daemon=True)
        #: Counters, for the log and for tests.
        self.offered = 0
        self.delivered = 0
        self.overflowed = 0
        self.rejected = 0

    def start(self):
        self._thread.start()

    def stop(self, timeout=5.0):
        """Stops the sender; what is still buffered is discarded (EP038:
        the next start is at the real-time point)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def offer(self, cloudevent):
        """Queues one event; never blocks. A full buffer drops its oldest."""
        with self._wake:
            if len(self._buffer) == self._buffer.maxlen:
                self.overflowed += 1
                if self.overflowed == 1 or self.overflowed % 1000 == 0:
                    LOG.error("ALARM: the event buffer is full (%d events): %d oldest "
                              "events dropped so far", self._buffer.maxlen, self.overflowed)
            self._buffer.append(cloudevent)
            self.offered += 1
            self._wake.notify()

    def pending(self):
        with self._lock:
            return len(self._buffer)

    def _next_batch(self):
        with self._wake:
            while not self._buffer and not self._stopping:
                self._wake.wait()
            if self._stopping:
                return None
            return [self._buffer[i] for i in range(min(self._batch_size, len(self._buffer)))]

    def _done(self, count):
        with self._lock:
            for _ in range(min(count, len(self._buffer))):
                self._buffer.popleft()

    def _post(self, batch):
        """POSTs one batch; returns (status, reason)."""
        body = json.dumps(batch).encode()
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", BATCH_CONTENT_TYPE)
        if self._token:
            request.add_header("Authorization", "Bearer " + self._token)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout,
                                        context=self._context) as response:
                return response.status, ""
        except urllib.error.HTTPError as error:
            return error.code, error.read(500).decode(errors="replace")
        except (OSError, ValueError) as error:
            return None, str(error)

    def _run(self):
        outage_since = None
        last_alarm = 0.0
        delay = self._retry_interval
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            status, reason = self._post(batch)
            if status is not None and 200 <= status < 300:
                self._done(len(batch))
                self.delivered += len(batch)
                if outage_since is not None:
                    LOG.warning("fnaa host %s reachable again after %.0f s; delivering the "
                                "%d events buffered", self.url, time.monotonic() - outage_since,
                                self.pending() + len(batch))
                    outage_since = None
                delay = self._retry_interval
                continue
            if status in (400, 413):
                # The host will never take these: retrying would only hold
                # back every later event.
                self._done(len(batch))
                self.rejected += len(batch)
                LOG.error("fnaa host refused %d events (HTTP %s): %s", len(batch), status, reason)
                continue
            now = time.monotonic()
            if outage_since is None:
                outage_since, last_alarm = now, now
                LOG.error("ALARM: cannot deliver events to the fnaa host %s (%s): buffering "
                          "up to %d events, retrying every %.1f s or more", self.url,
                          f"HTTP {status}: {reason}" if status else reason,
                          self._buffer.maxlen, delay)
            elif now - last_alarm >= self._alarm_reminder:
                last_alarm = now
                LOG.error("ALARM: fnaa host %s still unreachable for %.0f s (%s); %d events "
                          "buffered", self.url, now - outage_since,
                          f"HTTP {status}" if status else reason, self.pending())
            # New events must not cut the wait short: only a stop does.
            if self._stopped.wait(delay):
                return
            delay = min(delay * 2, self._max_retry_interval)
