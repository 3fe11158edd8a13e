"""Write the JSON Schemas of the MQTT payloads (:mod:`runtime.mqtt.messages`) into a folder.

``python -m runtime.mqtt.write_schemas docs/schemas`` after changing a payload model; a test
fails while the files in docs/schemas differ from what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from runtime.mqtt.messages import json_schemas


def schema_text(schema: dict[str, Any]) -> str:
    """A schema as the files hold it: sorted keys, two-space indent, a final newline."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    """Write ``<name>.schema.json`` for every message into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in json_schemas().items():
        path = folder / f"{name}.schema.json"
        path.write_text(schema_text(schema))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")):
        print(f"wrote {written}")
