"""Emits KytosEvents shaped like those of the kytos/topology NApp on the
controller's app buffer, when the tests POST them to
/api/fnaa_test/topology_emitter/v1/emit:

    [{"name": "kytos/topology.switch.enabled", "dpid": "00:..:01"},
     {"name": "kytos/topology.link_down", "link": ["00:..:01", 1, "00:..:02", 1],
      "reason": "port down"},
     {"name": "kytos/topology.topology_loaded", "content": {...}}]

Links are real kytos.core.link.Link objects between real Interfaces of
real Switches, as the topology NApp sends them.
"""
from flask import jsonify, request

from kytos.core import KytosEvent, KytosNApp, rest
from kytos.core.interface import Interface
from kytos.core.link import Link
from kytos.core.switch import Switch


class Main(KytosNApp):
    """The emitter."""

    def setup(self):
        self.switches = {}

    def execute(self):
        pass

    def shutdown(self):
        pass

    def _switch(self, dpid):
        if dpid not in self.switches:
            self.switches[dpid] = Switch(dpid)
        return self.switches[dpid]

    def _interface(self, dpid, port):
        switch = self._switch(dpid)
        if port not in switch.interfaces:
            switch.update_interface(Interface(f"eth{port}", port, switch))
        return switch.interfaces[port]

    def _content(self, spec):
        if "content" in spec:
            return spec["content"]
        if "link" in spec:
            dpid_a, port_a, dpid_b, port_b = spec["link"]
            link = Link(self._interface(dpid_a, port_a), self._interface(dpid_b, port_b))
            if spec["name"].endswith("link_up"):
                link.activate()
            else:
                link.deactivate()
            return {"link": link, "reason": spec.get("reason", "test")}
        if "dpid" in spec:
            return {"dpid": spec["dpid"], "switch": self._switch(spec["dpid"])}
        return {}

    @rest("v1/ready", methods=["GET"])
    def ready(self):
        """200 once listen_events is loaded, 503 before."""
        loaded = ("fnaa", "listen_events") in self.controller.napps
        return jsonify({"listen_events": loaded}), 200 if loaded else 503

    @rest("v1/emit", methods=["POST"])
    def emit(self):
        """Puts the requested events on the app buffer, in order."""
        specs = request.get_json(force=True)
        for spec in specs:
            event = KytosEvent(name=spec["name"], content=self._content(spec))
            self.controller.buffers.app.put(event)
        return jsonify({"emitted": len(specs)}), 200
