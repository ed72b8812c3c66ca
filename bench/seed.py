"""Bulk data for the benchmarks, written with PostgreSQL's COPY: users with
devices, push tokens, consents in realistic mixes, and locations."""
import io
import random
import uuid
from datetime import date, datetime, timedelta

import psycopg2

from bench import appside

PERMISSION_SHARE = {  # share of users who granted; about a fifth of the rest withdrew
    "service_push": 0.70, "marketing_push": 0.40, "personalization": 0.30, "device_info": 0.60,
    "location": 0.35, "precise_location": 0.10, "usage_statistics": 0.50, "partner_sharing": 0.05,
}
MODELS = ["Pixel 9", "Galaxy S25", "iPhone 16", "iPhone 15", "Mate 70", "P70", "Mi 14", "Redmi Note 13",
          "Reno 12", "X100", "Find X8", "nova 12", "Honor 200", "OnePlus 12", "iPhone 14", "Galaxy A55"]
CARRIERS = ["China Mobile", "China Unicom", "China Telecom", "CBN"]
CITIES = [(31.2304, 121.4737), (39.9042, 116.4074), (23.1291, 113.2644), (22.5431, 114.0579), (30.5728, 104.0668)]
PLATFORMS = [("android", "Android"), ("ios", "iOS"), ("harmonyos", "HarmonyOS")]


def copy(cursor, table, columns, rows):
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN', buffer)


def population(url, count, seed=7, chunk=50_000, all_consent=None, now=None):
    """``count`` users, each with one device; returns nothing (it is all in
    the database). ``all_consent`` grants those permissions to everyone."""
    rng = random.Random(seed)
    now = now or datetime.utcnow()
    today = date.today()
    app_functions = appside.seed_functions()
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            for start in range(0, count, chunk):
                _chunk(cursor, rng, min(chunk, count - start), start, now, today, all_consent, app_functions)
            cursor.execute("ANALYZE")
    finally:
        connection.close()


def _chunk(cursor, rng, size, offset, now, today, all_consent, app_functions):
    coarsen, version_number, gated = app_functions
    users, devices, tokens, consents, locations, guardians, summaries = [], [], [], [], [], [], []
    for n in range(offset, offset + size):
        user_id, device_id = uuid.UUID(int=rng.getrandbits(128)), uuid.UUID(int=rng.getrandbits(128))
        minor = rng.random() < 0.08
        birth = today - timedelta(days=rng.randrange(13 * 365, 17 * 365) if minor else rng.randrange(19 * 365, 70 * 365))
        users.append((user_id, f"user{n}@bench.example", f"user{n}@bench.example", "bench", "user",
                      birth if rng.random() < 0.7 else None, uuid.UUID(int=rng.getrandbits(128)), now))
        if minor and rng.random() < 0.3:
            guardians.append((uuid.UUID(int=rng.getrandbits(128)), user_id, "Parent", "mother", "bench", now))
        platform, os_name = rng.choice(PLATFORMS)
        model = MODELS[min(int(rng.paretovariate(1.2)) - 1, len(MODELS) - 1)]
        version = f"{rng.randrange(3, 6)}.{rng.randrange(0, 20)}.{rng.randrange(0, 5)}"
        seen = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        details = {"model": model, "manufacturer": "Maker", "os_name": os_name,
                   "os_version": str(rng.randrange(12, 18)), "carrier": rng.choice(CARRIERS),
                   "resolution": "1080x2400", "locale": "zh-CN", "timezone": "Asia/Shanghai"}
        devices.append((device_id, user_id, f"install-{n:09d}", platform, version, version_number(version),
                        *[details[name] for name in gated], now, seen))
        if rng.random() < 0.8:
            tokens.append((device_id, f"bench-token-{n:09d}-" + "x" * 120, "fcm", rng.random() < 0.95, now, now))
        chosen = {}
        for key, share in PERMISSION_SHARE.items():
            granted = all_consent is not None and key in all_consent or rng.random() < share
            if granted or rng.random() < 0.2:
                consents.append((user_id, key, granted, 1, now, False))
                chosen[key] = granted
            if key == "location" and granted:
                lat, lon = rng.choice(CITIES)
                c_lat, c_lon, cell = coarsen(lat + rng.gauss(0, 0.3), lon + rng.gauss(0, 0.3))
                locations.append((device_id, user_id, c_lat, c_lon, cell, "approximate",
                                  now - timedelta(minutes=rng.randrange(0, 60 * 24 * 30)), now))
        if chosen:  # consent_summary is consent pivoted per user (models.consent.ConsentSummary)
            summaries.append((user_id, *[v for key in PERMISSION_SHARE
                                         for v in ((chosen[key], 1, False) if key in chosen else (None, None, None))]))
    copy(cursor, "user", ["id", "email", "email_normalized", "password_hash", "role", "birth_date", "ledger_subject",
                          "created_at"], users)
    copy(cursor, "guardian_consent", ["id", "user_id", "guardian_name", "relationship", "evidence_ref",
                                      "recorded_at"], guardians)
    copy(cursor, "device", ["id", "user_id", "installation_id", "platform", "app_version", "app_version_num", *gated,
                            "created_at", "last_seen_at"], devices)
    copy(cursor, "push_token", ["device_id", "token", "provider", "notifications_enabled", "created_at",
                                "updated_at"], tokens)
    copy(cursor, "consent", ["user_id", "permission", "granted", "policy_id", "updated_at", "refused"], consents)
    copy(cursor, "consent_summary", ["user_id", *[f"{key}_{column}" for key in PERMISSION_SHARE
                                                  for column in ("granted", "policy", "refused")]], summaries)
    copy(cursor, "location", ["device_id", "user_id", "latitude", "longitude", "geohash", "precision", "captured_at",
                              "received_at"], locations)
