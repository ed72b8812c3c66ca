"""Helpers for tests of devices and locations."""
import uuid
from datetime import datetime, timedelta, timezone

from models.device import GATED_DEVICE_FIELDS
from tests.conftest import remember

# A sample value per gated field; a gated field without one fails here.
SAMPLE_DETAILS = {
    "model": "Pixel 9",
    "manufacturer": "Google",
    "os_name": "Android",
    "os_version": "15",
    "carrier": "China Mobile",
    "resolution": "1080x2424",
    "locale": "zh-CN",
    "timezone": "Asia/Shanghai",
}
FULL_DETAILS = {name: SAMPLE_DETAILS[name] for name in GATED_DEVICE_FIELDS}


def device_body(**overrides):
    body = {"installation_id": "inst-" + uuid.uuid4().hex[:12], "platform": "android", "app_version": "3.12.0",
            **FULL_DETAILS}
    body.update(overrides)
    return body


def add_device(client, headers, **overrides):
    response = client.post("/v1/devices", json=device_body(**overrides), headers=headers)
    assert response.status_code in (200, 201), response.json
    return response.json["device"]


def iso(moment):
    return moment.astimezone(timezone.utc).isoformat()


def ago(**delta):
    return iso(datetime.now(timezone.utc) - timedelta(**delta))


def point(latitude=31.230416, longitude=121.473701, **extra):
    remember("coordinate", latitude)
    remember("coordinate", longitude)
    return {"latitude": latitude, "longitude": longitude, "captured_at": ago(minutes=1), **extra}
