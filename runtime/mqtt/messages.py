"""The MQTT payloads as typed models: the contract between the daemon and whoever subscribes.

SCADA integrators, Node-RED flows and Grafana dashboards validate against these; their JSON
Schemas are written to ``docs/schemas/`` (``python -m runtime.mqtt.write_schemas docs/schemas``) and a
test keeps those files, and the README's payload section, in step with the models here. Adding a
field to a payload means adding it to its model below and regenerating the schemas.

Every JSON payload carries ``schema`` (an integer, :data:`SCHEMA_VERSION`): it is raised when a
field is removed or changes meaning; new fields only are not a new version, so the models (and
the schemas) allow properties they do not name and consumers should ignore those they do not
know. A payload without ``schema`` is version 1.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

SCHEMA_VERSION = 1


class Payload(BaseModel):
    """Fields every JSON payload shares; unknown fields are kept (newer daemons may add some)."""

    # NaN/inf are refused when a payload is built: JSON has no such numbers
    model_config = ConfigDict(extra="allow", populate_by_name=True, allow_inf_nan=False)

    schema_version: int = Field(
        SCHEMA_VERSION, alias="schema", description="Payload schema version; absent means 1."
    )

    def to_json_dict(self) -> dict[str, Any]:
        """The payload as published (field names as on the wire, e.g. ``class``, ``from``)."""
        return self.model_dump(by_alias=True, mode="json")


class ModelIdentity(BaseModel):
    """Which model produced a state or an event."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Model name from the registry, e.g. drsn_cw_paper.")
    version: str = Field(description="Model version from its metadata.")
    sha256: str = Field(description="sha256 of the weights (empty when the metadata carries none).")
    precision: str = Field(description="fp32 or fp16.")
    backend: str = Field(description="The backend running it: onnxruntime or tensorrt.")


class EnvelopeEvidence(BaseModel):
    """Envelope-spectrum evidence of a sensor (``diagnostics:`` in the config): the latest analysis.

    An analysis that failed carries only ``error`` and ``ts``; one that could not run (speed
    missing, stale or zero) carries ``reason``, ``bearing`` and ``ts``.
    """

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    verdict: str | None = Field(None, description="Fault type the envelope names, or none.")
    strength: str | None = Field(None, description="How clearly: strong, weak or none.")
    band_hz: list[float] | None = Field(None, description="Demodulation band [low, high] in Hz.")
    matched_frequency_hz: float | None = Field(None, description="Fault frequency matched, Hz.")
    harmonics_found: int | None = Field(None, description="Harmonics of it found in the envelope spectrum.")
    prominence_db: float | None = Field(None, description="Prominence of the matched peak, dB.")
    scores: dict[str, float] | None = Field(None, description="Score per fault type.")
    bearing: str | None = Field(None, description="Bearing whose kinematics were searched.")
    rpm: float | None = Field(None, description="Shaft speed used, rpm.")
    error: str | None = Field(None, description="Why the analysis failed, when it did.")
    reason: str | None = Field(
        None, description="Why no analysis ran (speed missing, stale, zero or too low for the samples kept).")
    ts: float | None = Field(None, description="Unix time of the analysis.")


class _Decision(Payload):
    """What a state and an event both say: which sensor, the class decided, how sure, by which model."""

    sensor: str = Field(description="Sensor id.")
    class_: str = Field(alias="class", description="The class of the state (same as the state for classes).")
    class_index: int | None = Field(description="Index of that class in the model's classes; null if none.")
    fault: bool | None = Field(description="True when the state is not the healthy class; null if unknown.")
    confidence: float = Field(description="Smoothed probability of the state's class, 0..1.")
    device: str = Field(description="mqtt.device_id of the daemon.")
    model: ModelIdentity = Field(description="The model that decided.")
    closest_class: str | None = Field(
        None, description="States unfamiliar/anomalous: the class the model would pick, beside the novelty.")
    closest_probability: float | None = Field(
        None, description="States unfamiliar/anomalous: that class's probability (often high: see novelty).")
    novelty_score: float | None = Field(
        None, description="States unfamiliar/anomalous: the smoothed novelty score that set the state.")


class StatePayload(_Decision):
    """``<prefix>/<device>/<sensor>/state`` (QoS 1, retained): the sensor's current fault state."""

    state: str = Field(description="Current state: a class name, or a state such as no_data.")
    since: float | None = Field(description="Unix time the state was entered; null before the first.")
    seq: int = Field(description="Sequence number of the last state change of this sensor.")
    windows: int = Field(description="Windows classified for this sensor since the daemon started.")
    ts: float = Field(description="Unix time the message was built.")
    envelope: EnvelopeEvidence | None = Field(
        None, description="Latest envelope evidence (sensors with diagnostics only).")


class EventPayload(_Decision):
    """``<prefix>/<device>/<sensor>/event`` (QoS 1, through the outbox): one state change."""

    id: str = Field(description="Unique id (uuid4); a redelivered event keeps it.")
    seq: int = Field(description="Per-sensor sequence number; increases by one per change, across restarts.")
    from_: str = Field(alias="from", description="State before the change.")
    to: str = Field(description="State after the change.")
    ts: float = Field(description="Unix time of the change.")
    previous_since: float | None = Field(description="Unix time the previous state was entered.")
    reason: str = Field(description="Why the state changed, in words.")
    envelope: EnvelopeEvidence | None = Field(
        None, description="Envelope evidence taken when a fault was entered (sensors with diagnostics only).")
    corroborated: bool | Literal["not_applicable"] | None = Field(
        None, description="Whether the envelope names the same fault type (sensors with diagnostics only).")
    alert: bool | None = Field(
        None, description="Whether the change should alert (false: the envelope contradicts the class).")


class DiagnosticsAlertPayload(Payload):
    """``<prefix>/<device>/<sensor>/diagnostics`` (QoS 1, through the outbox): the envelope's own alert.

    Sent once when a strong bearing-fault signature appears while the classifier says healthy
    (``diagnostics.alert_unseen``), and again only after the signature has gone and come back.
    """

    sensor: str = Field(description="Sensor id.")
    device: str = Field(description="mqtt.device_id of the daemon.")
    kind: Literal["envelope_signature"] = Field(description="What raised the alert.")
    fault_type: Literal["outer_race", "inner_race", "ball"] = Field(
        description="The bearing fault type the envelope names.")
    classifier_state: str = Field(description="What the classifier said at the time (healthy).")
    envelope: EnvelopeEvidence = Field(description="The evidence: band, matched frequency, harmonics, dB.")
    ts: float = Field(description="Unix time of the analysis.")


class PredictionPayload(Payload):
    """``<prefix>/<device>/<sensor>/prediction`` (QoS 0 or 1): one window's classification."""

    sensor: str = Field(description="Sensor id.")
    window: int = Field(description="Index of the window in the sensor's stream since the daemon started.")
    ts: float = Field(description="Unix time of the window's last sample.")
    class_: str = Field(alias="class", description="The most probable class.")
    confidence: float = Field(description="Its probability, 0..1.")
    probs: list[float] = Field(description="Probability of every class, in the model's class order.")


class PredictionBatchPayload(Payload):
    """``<prefix>/<device>/predictions`` (QoS 0 or 1): every window of one inference batch, as arrays.

    ``mqtt.predictions: batch`` (or ``both``). Row ``i`` of every array is one window; a batch
    mixes sensors of one model. One message per batch instead of one per window.
    """

    device: str = Field(description="mqtt.device_id of the daemon.")
    model: str = Field(description="Model name.")
    classes: list[str] = Field(description="The model's classes, in the order of probs' columns.")
    sensor: list[str] = Field(description="Sensor id of each window.")
    window: list[int] = Field(description="Index of each window in its sensor's stream.")
    window_ts: list[float] = Field(description="Unix time of each window's last sample.")
    class_index: list[int] = Field(description="Most probable class of each window (index into classes).")
    confidence: list[float] = Field(description="Its probability, 0..1.")
    probs: list[list[float]] = Field(description="Probability of every class, one row per window.")
    ts: float = Field(description="Unix time the batch was classified.")


class MetricsPayload(Payload):
    """``<prefix>/<device>/metrics`` (QoS 0, every mqtt.metrics_interval_s): counters and gauges.

    The counters are those of the Prometheus endpoint; only the fields named here are part of
    the contract, the others may change with the metrics.
    """

    ts: float = Field(description="Unix time of the snapshot.")
    disabled_sensors: dict[str, str] = Field(
        default_factory=dict, description="Sensors that could not be served, with the reason."
    )
    mqtt: dict[str, Any] | None = Field(
        default=None, description="Broker link and outbox figures (connected, outbox_depth, acked, ...)."
    )


class CommandPayload(BaseModel):
    """``<prefix>/<device>/cmd`` (not retained): a command to the daemon, e.g. ``{"action": "reload"}``."""

    model_config = ConfigDict(extra="allow")

    action: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="What to do; the daemon knows reload and relearn (with sensor: ID).",
    )


class StatusPayload(RootModel[Literal["online", "offline", "stopped"]]):
    """``<prefix>/<device>/status`` (QoS 1, retained): plain text, not JSON. ``online`` on every
    connect, ``offline`` as the last will (crash, power or network loss), ``stopped`` on a clean exit."""


#: file stem in docs/schemas -> model
MESSAGES: dict[str, type[BaseModel]] = {
    "state": StatePayload,
    "event": EventPayload,
    "diagnostics": DiagnosticsAlertPayload,
    "prediction": PredictionPayload,
    "predictions": PredictionBatchPayload,
    "metrics": MetricsPayload,
    "status": StatusPayload,
    "command": CommandPayload,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Each message's JSON Schema, as consumers see the payload on the wire."""
    out = {}
    for name, model in MESSAGES.items():
        schema = model.model_json_schema(by_alias=True, mode="serialization")
        schema["$id"] = f"{name}.schema.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[name] = schema
    return out
