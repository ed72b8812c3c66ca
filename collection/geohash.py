"""Coarsening locations (docs/architecture.md, "Approximate location"): the
centre of the geohash-5 cell that contains the point, about 4.9 km x 4.9 km."""
import math

import pygeohash

CELL_PRECISION = 5
PRECISE_DECIMALS = 6
EARTH_RADIUS_KM = 6371.0088


def cell(latitude, longitude):
    return pygeohash.encode(latitude, longitude, precision=CELL_PRECISION)


def cell_centre(geohash):
    centre = pygeohash.decode(geohash)
    return centre.latitude, centre.longitude


def coarsen(latitude, longitude):
    """(latitude, longitude, geohash) of the cell centre."""
    geohash = cell(latitude, longitude)
    return (*cell_centre(geohash), geohash)


def as_reported(latitude, longitude):
    """(latitude, longitude, geohash) as sent, to 6 decimals (about 0.1 m)."""
    return round(latitude, PRECISE_DECIMALS), round(longitude, PRECISE_DECIMALS), cell(latitude, longitude)


def distance_km(lat1, lon1, lat2, lon2):
    """Great-circle distance (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))
