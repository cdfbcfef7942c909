"""Unit tests of listen_events' forwarder, without Kytos:

    python3 -m unittest discover -s examples/kytos/tests
"""
import datetime
import http.server
import importlib.util
import json
import logging
import pathlib
import re
import threading
import time
import unittest

HERE = pathlib.Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location(
    "forwarder", HERE.parent / "listen_events" / "forwarder.py")
forwarder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(forwarder)


class Event:
    def __init__(self, name, content, timestamp=None):
        self.name = name
        self.content = content
        self.timestamp = timestamp


class Switch:
    dpid = "00:01"

    def as_dict(self):
        return {"dpid": self.dpid, "active": True}


class TranslateTest(unittest.TestCase):
    def kytos_matches(self, pattern, name):
        # What Kytos 2021.1 does with a listener's pattern.
        return re.match(forwarder.translate(pattern) + "$", name) is not None

    def test_ep038_wildcards_match_what_they_mean(self):
        self.assertTrue(self.kytos_matches("kytos/topology.link_*", "kytos/topology.link_up"))
        self.assertTrue(self.kytos_matches("kytos/topology.*", "kytos/topology.switch.enabled"))
        self.assertFalse(self.kytos_matches("kytos/topology.link_*", "kytos/topologyXlink_up"))
        self.assertFalse(self.kytos_matches("kytos/topology.switch.enabled",
                                            "kytos/topology.switch.enabled.extra"))
        # The raw pattern, as EP038 writes it, never matches under Kytos.
        self.assertIsNone(re.match("kytos/topology.link_*" + "$", "kytos/topology.link_up"))


class CloudEventTest(unittest.TestCase):
    def test_attributes_come_from_the_kytos_event(self):
        when = datetime.datetime(2026, 12, 3, 10, 0, 0, 5000, tzinfo=datetime.timezone.utc)
        ce = forwarder.to_cloudevent(
            Event("kytos/topology.switch.enabled", {"dpid": "00:01", "switch": Switch()}, when),
            "kytos://ctl")
        self.assertEqual(ce["type"], "kytos/topology.switch.enabled")
        self.assertEqual(ce["source"], "kytos://ctl")
        self.assertEqual(ce["subject"], "00:01")
        self.assertEqual(ce["time"], "2026-12-03T10:00:00.005000Z")
        self.assertEqual(ce["data"], {"dpid": "00:01", "switch": {"dpid": "00:01", "active": True}})
        self.assertEqual(len(ce["id"]), 36)

    def test_the_subject_of_a_link_event_is_the_link_id(self):
        class Link:
            id = "abc"

            def as_dict(self):
                return {"id": "abc"}

        ce = forwarder.to_cloudevent(Event("kytos/topology.link_up", {"link": Link()}), "s")
        self.assertEqual(ce["subject"], "abc")
        self.assertNotIn("time", ce)


class Host(http.server.ThreadingHTTPServer):
    """Answers each POST with the next status of `statuses` (then 202)."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.batches = []
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/events/kytos" % self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.server.statuses.pop(0) if self.server.statuses else 202
        if status == 202:
            assert self.headers["Content-Type"] == forwarder.BATCH_CONTENT_TYPE
            assert self.headers["Authorization"] == "Bearer t"
            self.server.batches.append(json.loads(body))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


def wait_for(condition, timeout=10.0):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


class ForwarderTest(unittest.TestCase):
    def delivered_ids(self, host):
        return [e["id"] for batch in host.batches for e in batch]

    def test_an_outage_is_retried_with_an_alarm_and_nothing_is_lost(self):
        host = Host([503, 503])
        f = forwarder.Forwarder(host.url, token="t", retry_interval=0.05, max_retry_interval=0.1)
        with self.assertLogs(forwarder.LOG, logging.WARNING) as logs:
            f.start()
            for i in range(5):
                f.offer({"id": str(i)})
            wait_for(lambda: len(self.delivered_ids(host)) == 5)
            f.stop()
        self.assertEqual(self.delivered_ids(host), ["0", "1", "2", "3", "4"])
        text = "\n".join(logs.output)
        self.assertEqual(text.count("ALARM: cannot deliver"), 1, text)
        self.assertIn("reachable again", text)

    def test_an_unreachable_host_is_an_alarm_too(self):
        f = forwarder.Forwarder("http://127.0.0.1:9/events/kytos", retry_interval=0.05)
        with self.assertLogs(forwarder.LOG, logging.ERROR) as logs:
            f.start()
            f.offer({"id": "x"})
            wait_for(lambda: any("ALARM" in line for line in logs.output))
            f.stop()
        self.assertEqual(f.pending(), 1)

    def test_a_batch_the_host_refuses_is_dropped_and_reported(self):
        host = Host([400])
        f = forwarder.Forwarder(host.url, token="t", batch_size=1)
        with self.assertLogs(forwarder.LOG, logging.ERROR):
            f.start()
            f.offer({"id": "bad"})
            f.offer({"id": "good"})
            wait_for(lambda: self.delivered_ids(host) == ["good"])
            f.stop()
        self.assertEqual(f.rejected, 1)

    def test_a_full_buffer_drops_its_oldest_and_never_blocks(self):
        f = forwarder.Forwarder("http://127.0.0.1:9/", buffer_size=3)
        with self.assertLogs(forwarder.LOG, logging.ERROR):
            started = time.time()
            for i in range(10):
                f.offer({"id": str(i)})
            self.assertLess(time.time() - started, 1.0)
        self.assertEqual(f.pending(), 3)
        self.assertEqual(f.overflowed, 7)


if __name__ == "__main__":
    unittest.main()
