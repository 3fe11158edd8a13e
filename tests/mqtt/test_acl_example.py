"""deploy/mosquitto/drsn-edge.acl on a real Mosquitto: only operators reach a daemon's command topic."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import paho.mqtt.publish as mqtt_publish
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.broker import MosquittoBroker, mosquitto_binary

ACL = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "drsn-edge.acl"
USERS = {"drsn-edge": "d-pw", "operator": "o-pw", "gateway": "g-pw", "scada": "s-pw"}
CMD = "drsn-edge/line-3/cmd"


@pytest.fixture
def acl_broker() -> Iterator[MosquittoBroker]:
    tool = shutil.which("mosquitto_passwd")
    if mosquitto_binary() is None or tool is None:
        pytest.skip("mosquitto and mosquitto_passwd are needed (apt-get install mosquitto)")
    broker = MosquittoBroker()
    pw_file = broker.conf_path.parent / "passwd"
    for i, (user, password) in enumerate(USERS.items()):
        args = [tool, "-b", str(pw_file), user, password]
        subprocess.run(args[:1] + (["-c"] if i == 0 else []) + args[1:], check=True, capture_output=True)
    conf = broker.conf_path.read_text().replace("allow_anonymous true", "allow_anonymous false")
    broker.conf_path.write_text(conf + f"password_file {pw_file}\nacl_file {ACL}\n")
    with broker:
        yield broker


def test_only_operators_can_command_the_daemon(acl_broker: MosquittoBroker) -> None:
    got: list[bytes] = []
    subscribed, arrived = threading.Event(), threading.Event()
    daemon = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="daemon")
    daemon.username_pw_set("drsn-edge", USERS["drsn-edge"])
    daemon.on_connect = lambda c, *_: c.subscribe(CMD, qos=1)
    daemon.on_subscribe = lambda *_: subscribed.set()
    daemon.on_message = lambda c, u, m: (got.append(bytes(m.payload)), arrived.set())
    daemon.connect(acl_broker.host, acl_broker.port)
    daemon.loop_start()
    try:
        assert subscribed.wait(5)
        for user in ("gateway", "scada", "drsn-edge", "operator"):  # the operator's comes last
            mqtt_publish.single(CMD, f'{{"action": "reload", "by": "{user}"}}', qos=1,
                                hostname=acl_broker.host, port=acl_broker.port,
                                auth={"username": user, "password": USERS[user]})
        assert arrived.wait(5)
    finally:
        daemon.disconnect()
        daemon.loop_stop()
    assert got == [b'{"action": "reload", "by": "operator"}']
