"""Fleet telemetry: results, events and health of many devices on an MQTT broker.

- config.py: MqttConfig (broker URL, TLS, credentials kept out of logs and run.json)
- spool.py: the bounded on-disk log every message goes through (nothing lost when offline)
- mqtt.py: MqttPublisher (paho-mqtt, QoS 1, retained last will `offline`)
- payloads.py: the `edgeaffect.mqtt/1` envelope
- sink.py: TelemetrySink, the run loop's observer publishing frames/events/state/stats
- fleet.py: `edgeaffect fleet`, the cross-device stats/bench table and plot

paho-mqtt is an optional extra (`pip install 'edgeaffect[mqtt]'`): importing this package
does not need it; creating a publisher does.
"""

from .config import MqttConfig, config_from_args, parse_url
from .payloads import MQTT_SCHEMA, envelope, parse
from .spool import Spool

__all__ = ["MqttConfig", "config_from_args", "parse_url", "MQTT_SCHEMA", "envelope", "parse", "Spool"]
