"""One exception family for the whole project.

Every error a user can cause (bad data, a corrupt model file, an invalid config, a malformed
payload) is raised as a subclass of :class:`DrsnEdgeError` with a message that names the problem
and the fix. Callers that must keep running (the daemon serving its other sensors) catch this
base class and count the failure instead of crashing.
"""

from __future__ import annotations


class DrsnEdgeError(Exception):
    """Base class of every error drsn-edge raises on purpose."""


class DataError(DrsnEdgeError, ValueError):
    """Input samples or recordings are unusable (NaN, too short, wrong rate, unknown label...)."""


class ModelFileError(DrsnEdgeError):
    """A model, checkpoint or engine file is missing, corrupt, foreign or mismatched."""


class ConfigError(DrsnEdgeError, ValueError):
    """A configuration file or option is invalid."""


class PayloadError(DataError):
    """A raw-sample message from a sensor (MQTT/UDP) is malformed."""


class BackendUnavailableError(DrsnEdgeError, ImportError):
    """An optional inference backend's package is not installed; the message names the extra."""


class ParityError(DrsnEdgeError):
    """Two runtimes disagree on the same inputs beyond the stated tolerance."""
