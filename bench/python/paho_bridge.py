"""A Leapcraft-to-MQTT bridge written the way users write one: requests for the API,
paho-mqtt for the broker, a ThreadPoolExecutor to read the devices in parallel. Figure 9 of
BENCHMARKS.md measures it beside `leapcraft mqtt`.

It publishes what `leapcraft mqtt` publishes, on the same topics: a retained Home Assistant
discovery config per sensor (once per device and metric), a retained JSON state per device
when its reading changed, and `online` / `offline` (the will) on the availability topic.
Each poll exchanges no new token unless the API answers 401, lists the devices (pages of
1,000, as `leapcraft mqtt` does) and reads each device's latest reading; it prints
`poll done` on stderr once the readings are in, before publishing them, as `leapcraft mqtt`
logs it.

    PYTHONPATH=target/bench-python python3 bench/python/paho_bridge.py \
        --base-url http://127.0.0.1:PORT/v1 --api-key KEY --broker 127.0.0.1:1883
"""

import argparse
import json
import os
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as mqtt
import requests
from requests.adapters import HTTPAdapter

KNOWN = {
    # key: (name, device class, unit)
    "temperature": ("Temperature", "temperature", "°C"),
    "humidity": ("Humidity", "humidity", "%"),
    "co2": ("CO2", "carbon_dioxide", "ppm"),
    "pm2_5": ("PM2.5", "pm25", "\u03bcg/m\u00b3"),
}
MAX_OTHER = 32


def segment(text):
    """A topic level and Home Assistant id: letters, digits and _ kept, other bytes -xx."""
    if not text:
        return "-"
    return "".join(
        chr(b) if (chr(b).isascii() and chr(b).isalnum()) or b == 0x5F else "-%02x" % b
        for b in text.encode("utf-8")
    )


class Api:
    def __init__(self, base_url, api_key, workers):
        self.base = base_url.rstrip("/")
        self.api_key = api_key
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=workers)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.token = None
        self.lock = threading.Lock()

    def refresh(self):
        r = self.session.post(
            self.base + "/auth/client/token", data={"api_key": self.api_key}, timeout=30
        )
        r.raise_for_status()
        self.token = r.json()["token"]

    def get(self, path, params=None):
        for _ in range(2):
            with self.lock:
                if self.token is None:
                    self.refresh()
                token = self.token
            r = self.session.get(
                self.base + path,
                params=params,
                headers={"Authorization": "Bearer " + token},
                timeout=30,
            )
            if r.status_code == 401:
                with self.lock:
                    if self.token == token:
                        self.token = None
                continue
            r.raise_for_status()
            return r.json()
        raise RuntimeError("the API refused the token twice")

    def devices(self):
        out, page = [], 1
        while True:
            items = self.get("/devices", {"limit": 1000, "page": page})
            out.extend(items)
            if len(items) < 1000:
                return out
            page += 1

    def latest(self, device):
        pid = urllib.parse.quote(device["physical_id"], safe="")
        try:
            return device, self.get("/telemetry/" + pid, {"type": "latest"})
        except Exception as e:  # one bad device must not stop the others
            print("cannot read %s: %s" % (device["physical_id"], e), file=sys.stderr)
            return device, None


def metrics_of(data):
    """(key in the state, object id, name, class, unit, value) of each numeric metric."""
    out = []
    for key, (name, cls, unit) in KNOWN.items():
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((key, key, name, cls, unit, value))
    others = 0
    for key in sorted(data):
        value = data[key]
        if key in KNOWN or not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if others == MAX_OTHER:
            break
        others += 1
        out.append((segment(key), "other_" + segment(key), key, None, None, value))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--api-key", default=os.environ.get("LEAPCRAFT_API_KEY"))
    p.add_argument("--broker", default="127.0.0.1:1883")
    p.add_argument("--interval", type=float, default=300)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--stale-after", type=int, default=3600)
    p.add_argument("--discovery-prefix", default="homeassistant")
    p.add_argument("--topic-prefix", default="leapcraft")
    args = p.parse_args()

    availability = args.topic_prefix + "/bridge/availability"
    host, _, port = args.broker.rpartition(":")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-bridge-%d" % os.getpid())
    client.will_set(availability, "offline", qos=1, retain=True)

    def on_connect(client, userdata, flags, reason_code, properties):
        client.publish(availability, "online", qos=1, retain=True)

    client.on_connect = on_connect
    client.connect(host, int(port))
    client.loop_start()

    api = Api(args.base_url, args.api_key, args.workers)
    announced = {}  # physical id -> object ids announced
    last_state = {}  # physical id -> payload published
    pool = ThreadPoolExecutor(max_workers=args.workers)
    while True:
        started = time.monotonic()
        devices = api.devices()
        results = list(pool.map(api.latest, devices))
        readings = sum(1 for _, r in results if r is not None)
        print(
            "poll done devices=%d readings=%d duration=%.1fs"
            % (len(devices), readings, time.monotonic() - started),
            file=sys.stderr,
            flush=True,
        )
        for device, reading in results:
            if reading is None:
                continue
            pid = device["physical_id"]
            node = segment(pid)
            state_topic = "%s/%s/state" % (args.topic_prefix, node)
            metrics = metrics_of(reading.get("data") or {})
            seen = announced.setdefault(pid, set())
            for key, object_id, name, cls, unit, _ in metrics:
                if object_id in seen:
                    continue
                seen.add(object_id)
                info = {
                    "identifiers": ["leapcraft_" + node],
                    "name": device.get("name") or pid,
                    "manufacturer": "Leapcraft",
                }
                if device.get("type"):
                    info["model"] = device["type"]
                if device.get("serial"):
                    info["serial_number"] = device["serial"]
                config = {
                    "name": name,
                    "unique_id": "leapcraft_%s_%s" % (node, object_id),
                    "state_topic": state_topic,
                    "value_template": (
                        "{{ value_json.%s }}" % key
                        if cls
                        else "{{ value_json['other']['%s'] }}" % key
                    ),
                }
                if cls:
                    config["device_class"] = cls
                    config["unit_of_measurement"] = unit
                config.update(
                    {
                        "state_class": "measurement",
                        "expire_after": args.stale_after,
                        "availability_topic": availability,
                        "device": info,
                        "origin": {"name": "paho_bridge.py"},
                    }
                )
                topic = "%s/sensor/leapcraft_%s/%s/config" % (
                    args.discovery_prefix,
                    node,
                    object_id,
                )
                client.publish(topic, json.dumps(config), qos=1, retain=True)
            state = {"recorded_at": reading.get("timestamp")}
            other = {}
            for key, object_id, _, cls, _, value in metrics:
                (state if cls else other)[key] = value
            if other:
                state["other"] = other
            payload = json.dumps(state)
            if last_state.get(pid) != payload:
                last_state[pid] = payload
                client.publish(state_topic, payload, qos=1, retain=True)
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
