"""What the app collects from phones: devices and their reports, push
tokens, locations (with their geohash cells), and how long it keeps them."""
from collection import devices, locations, retention, tokens


def register_effects(effects):
    """What withdrawing each permission does to the collected data."""
    effects.register("location", locations.delete_locations)
    effects.register("precise_location", locations.coarsen_locations)
    effects.register("device_info", devices.forget_device_details)
    for key in ("service_push", "marketing_push"):
        effects.register(key, tokens.delete_push_tokens_without_push_consent)


def register_tasks(queue):
    retention.register_tasks(queue)
