"""Albers equal-area conic projection, forward only, in numpy.

The maps (bisonflow.graphics.maps) colour counties by a value per area, so the projection must keep
areas: a large county must not look larger than it is. Albers' conic does, and is the USGS's
customary projection of the United States. Formulas from Snyder, "Map Projections: A Working
Manual", USGS Professional Paper 1395 (1987), section 14 "Albers Equal-Area Conic", for the
ellipsoid (eccentricity e, semi-major axis a; e = 0 is the sphere of radius a):

    m  = cos(phi) / sqrt(1 - e^2 sin^2(phi))                                        (14-15)
    q  = (1 - e^2) [ sin(phi) / (1 - e^2 sin^2(phi))
                     - 1/(2e) ln((1 - e sin(phi)) / (1 + e sin(phi))) ]             (3-12)
         (q = 2 sin(phi) on the sphere, the limit as e -> 0)
    n  = (m1^2 - m2^2) / (q2 - q1)                                                  (14-14)
    C  = m1^2 + n q1                                                                (14-13)
    rho = a sqrt(C - n q) / n,  rho0 = a sqrt(C - n q0) / n                         (14-12)
    theta = n (lambda - lambda0)                                                    (14-4)
    x = rho sin(theta),  y = rho0 - rho cos(theta)                                  (14-1, 14-2)

with phi1, phi2 the standard parallels, phi0/lambda0 the origin. Longitudes are first taken
to within 180 degrees of lambda0, so the Aleutians east of the antimeridian (positive
longitudes) stay beside the rest of Alaska. Snyder's numerical examples (PP 1395, pp. 291-292)
are the tests: tests/test_projection.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: GRS 80 (the ellipsoid of NAD83, EPSG:4269, the census boundaries' datum).
GRS80_A = 6_378_137.0
GRS80_E2 = 0.00669438002290


@dataclass(frozen=True)
class Albers:
    """One Albers conic: standard parallels, origin (degrees) and the ellipsoid."""

    lat1: float
    lat2: float
    lat0: float
    lon0: float
    a: float = GRS80_A
    e2: float = GRS80_E2

    def _q(self, sin_phi: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.e2 == 0:
            return 2.0 * sin_phi
        e = np.sqrt(self.e2)
        es = e * sin_phi
        return (1 - self.e2) * (sin_phi / (1 - es * es) - np.log((1 - es) / (1 + es)) / (2 * e))

    def _m(self, phi: float) -> float:
        return float(np.cos(phi) / np.sqrt(1 - self.e2 * np.sin(phi) ** 2))

    def forward(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(x, y) in the units of `a` (metres for GRS 80) of longitudes/latitudes in degrees."""
        phi1, phi2, phi0 = np.radians([self.lat1, self.lat2, self.lat0])
        m1, m2 = self._m(phi1), self._m(phi2)
        q1, q2, q0 = self._q(np.sin(np.array([phi1, phi2, phi0])))
        n = (m1 * m1 - m2 * m2) / (q2 - q1)
        c = m1 * m1 + n * q1
        rho0 = self.a * np.sqrt(c - n * q0) / n
        lam = np.asarray(lon, dtype=np.float64)
        lam = (lam - self.lon0 + 180.0) % 360.0 - 180.0  # within 180 degrees of lambda0
        q = self._q(np.sin(np.radians(np.asarray(lat, dtype=np.float64))))
        rho = self.a * np.sqrt(c - n * q) / n
        theta = n * np.radians(lam)
        return rho * np.sin(theta), rho0 - rho * np.cos(theta)
