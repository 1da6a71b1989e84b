"""Client geolocation: the ``GeoLocator`` interface, a MaxMind .mmdb implementation.

Implementations:
- ``MaxMindLocator(path)``: a GeoLite2 / DB-IP *City* database gives coordinates directly
  (``source="mmdb"``). A *Country* database only gives the ISO country; the coordinates then
  come from ``COUNTRY_CENTROIDS`` below, a small hand-made table of approximate country
  centres (``source="fallback"``). Countries missing from the table keep the country code and
  no coordinates.
- ``NoGeoLocator``: the default when no database is configured; every lookup answers ``None``,
  so relay-distance facts stay empty and ``geo_source`` is ``"none"``.

Privacy: callers look up the full address once and keep only ``collector.netaddr.truncate_ip(addr)``
afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import maxminddb

from collector.errors import ConfigError
from collector.netaddr import is_public_ip, parse_ip


@dataclass(frozen=True)
class GeoPoint:
    country: str  # ISO 3166-1 alpha-2, "" when unknown
    lat: float | None
    lon: float | None
    source: str  # "mmdb" (coordinates from the database) | "fallback" (country centroid)


class GeoLocator(Protocol):
    def locate(self, ip: str) -> GeoPoint | None:
        """Where ``ip`` is, or None when unknown (private, unparseable, not in the database)."""
        ...


class NoGeoLocator:
    """The locator used when no GeoIP database is configured: knows nothing."""

    def locate(self, ip: str) -> GeoPoint | None:
        return None


class MaxMindLocator:
    """Looks addresses up in a MaxMind-format database (GeoLite2/DB-IP, City or Country)."""

    def __init__(self, path: str) -> None:
        try:
            self._reader = maxminddb.open_database(path)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise ConfigError(
                f"GeoIP database {path!r} cannot be opened ({exc}); point the geo database setting "
                "at a GeoLite2/DB-IP City or Country .mmdb file, or leave it empty to run without geo"
            ) from exc

    def locate(self, ip: str) -> GeoPoint | None:
        parsed = parse_ip(ip)
        if parsed is None or not is_public_ip(parsed):
            return None
        try:
            record = self._reader.get(parsed)
        except ValueError:  # an IPv6 address against an IPv4-only database
            return None
        if not isinstance(record, dict):
            return None
        return _point_from_record(record)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> MaxMindLocator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _point_from_record(record: dict[str, Any]) -> GeoPoint | None:
    country = ""
    for key in ("country", "registered_country"):
        section = record.get(key)
        if isinstance(section, dict) and isinstance(section.get("iso_code"), str):
            country = section["iso_code"].upper()
            break
    location = record.get("location")
    if isinstance(location, dict):
        lat, lon = location.get("latitude"), location.get("longitude")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            return GeoPoint(country=country, lat=float(lat), lon=float(lon), source="mmdb")
    if not country:
        return None
    centroid = COUNTRY_CENTROIDS.get(country)
    if centroid is None:
        return GeoPoint(country=country, lat=None, lon=None, source="fallback")
    return GeoPoint(country=country, lat=centroid[0], lon=centroid[1], source="fallback")


# Approximate geographic centres (lat, lon) of countries, rounded to whole degrees or halves.
# Used only when the database has no coordinates (Country editions). Good enough to pick the
# nearest region; not good enough for anything finer.
COUNTRY_CENTROIDS: dict[str, tuple[float, float]] = {
    "AE": (24.0, 54.0),
    "AR": (-34.0, -64.0),
    "AT": (47.5, 14.5),
    "AU": (-25.0, 134.0),
    "BD": (24.0, 90.0),
    "BE": (50.5, 4.5),
    "BG": (42.7, 25.5),
    "BR": (-10.0, -52.0),
    "CA": (56.0, -106.0),
    "CH": (46.8, 8.2),
    "CL": (-33.0, -71.0),
    "CN": (35.0, 103.0),
    "CO": (4.0, -73.0),
    "CZ": (49.8, 15.5),
    "DE": (51.0, 10.0),
    "DK": (56.0, 10.0),
    "EG": (27.0, 30.0),
    "ES": (40.0, -4.0),
    "FI": (64.0, 26.0),
    "FR": (46.5, 2.5),
    "GB": (54.0, -2.0),
    "GR": (39.0, 22.0),
    "HK": (22.3, 114.2),
    "HU": (47.0, 19.5),
    "ID": (-2.0, 118.0),
    "IE": (53.2, -8.0),
    "IL": (31.5, 35.0),
    "IN": (22.0, 79.0),
    "IT": (42.8, 12.5),
    "JP": (36.0, 138.0),
    "KE": (0.5, 38.0),
    "KR": (36.5, 128.0),
    "MX": (23.0, -102.0),
    "MY": (4.0, 102.0),
    "NG": (9.0, 8.0),
    "NL": (52.2, 5.5),
    "NO": (62.0, 10.0),
    "NZ": (-41.0, 174.0),
    "PE": (-10.0, -76.0),
    "PH": (12.0, 122.0),
    "PK": (30.0, 70.0),
    "PL": (52.0, 19.5),
    "PT": (39.5, -8.0),
    "RO": (46.0, 25.0),
    "RU": (60.0, 90.0),
    "SA": (24.0, 45.0),
    "SE": (62.0, 15.0),
    "SG": (1.35, 103.8),
    "TH": (15.0, 101.0),
    "TR": (39.0, 35.0),
    "TW": (23.7, 121.0),
    "UA": (49.0, 32.0),
    "US": (39.8, -98.6),
    "VN": (16.0, 107.0),
    "ZA": (-29.0, 24.0),
}
