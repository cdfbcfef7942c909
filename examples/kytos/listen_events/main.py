"""Kytos EP038 listen_events: every event matching settings.LISTEN goes,
as a CloudEvent, to an fnaa host, which classifies it and publishes it to
RabbitMQ (or any broker it has) with confirms, retries and continuity.

Runs on kytos-ng (`@alisten_to`, on the controller's asyncio loop) and on
Kytos 2021.1, whichever the controller is. On 2021.1 `@listen_to` would
run every event on a thread of its own, and threads reorder events (a
`link_down` could overtake the `link_up` before it); since the handler
only queues the event and never blocks, it is registered the way
`@listen_to` registers handlers (an `events` attribute) but without the
thread, so the controller's event loop calls it in order.
"""
from kytos.core import KytosNApp, log

from napps.fnaa.listen_events import settings
from napps.fnaa.listen_events.forwarder import Forwarder, to_cloudevent, translate

try:  # kytos-ng
    from kytos.core.helpers import alisten_to as _alisten_to
except ImportError:  # Kytos 2021.1
    _alisten_to = None

PATTERNS = [translate(pattern) for pattern in settings.LISTEN]


def _token():
    if settings.TOKEN_FILE:
        with open(settings.TOKEN_FILE, encoding="utf-8") as file:
            return file.read().strip()
    return settings.TOKEN


class Main(KytosNApp):
    """The listen_events NApp."""

    def setup(self):
        """Starts the forwarder: a fresh, empty buffer (real-time point)."""
        self.forwarder = Forwarder(
            settings.URL,
            token=_token(),
            ca_file=settings.CA_FILE,
            buffer_size=settings.BUFFER_SIZE,
            batch_size=settings.BATCH_SIZE,
            retry_interval=settings.RETRY_INTERVAL,
            max_retry_interval=settings.MAX_RETRY_INTERVAL,
            alarm_reminder=settings.ALARM_REMINDER,
            timeout=settings.TIMEOUT,
        )
        self.forwarder.start()
        log.info("listen_events: forwarding %s (as %s) to %s", settings.LISTEN, PATTERNS,
                 settings.URL)

    def execute(self):
        """Nothing to run: events arrive through the listener."""

    def shutdown(self):
        """Stops the forwarder; events still buffered are discarded."""
        pending = self.forwarder.pending()
        self.forwarder.stop()
        log.info("listen_events stopped: %d delivered, %d discarded at shutdown, %d dropped "
                 "on overflow, %d refused by the host", self.forwarder.delivered, pending,
                 self.forwarder.overflowed, self.forwarder.rejected)

    def forward(self, event):
        """Queues `event` for the host."""
        try:
            self.forwarder.offer(to_cloudevent(event, settings.SOURCE))
        except (TypeError, ValueError) as error:  # content that is not JSON
            log.error("listen_events cannot convert %s: %s", event.name, error)

    if _alisten_to is not None:
        @_alisten_to(*PATTERNS)
        async def on_event(self, event):
            """Every matching event (kytos-ng: on the asyncio loop)."""
            self.forward(event)
    else:
        def on_event(self, event):
            """Every matching event (Kytos 2021.1: inline, in order)."""
            self.forward(event)

        on_event.events = PATTERNS
