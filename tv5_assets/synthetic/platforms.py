"""The streaming platforms: business model, catalogue share, footprint, and what each one favours.

`share` is the target share of the MovieLens catalogue on the platform. `affinity` weighs the
catalogue features the platform leans to (see `availability`): TV5MONDE to French-language titles,
Disney+ to Children/Animation, MUBI and the Criterion Channel to old, non-English, art-house titles.
`popularity` and `recency` scale the global popularity / recency weights (negative: the platform
leans the other way). `uptake` is the chance a user of each archetype subscribes, where the platform
is offered in the user's region.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from tv5_assets.synthetic import archetypes as a
from tv5_assets.synthetic import regions as r

QUALITIES: tuple[str, ...] = ("HD", "4K", "HDR", "Dolby Atmos")
BUSINESS_MODELS: tuple[str, ...] = ("free", "subscription")


@dataclass(frozen=True)
class Platform:
    name: str
    business_model: str
    share: float
    launched: dt.date  # no title is available before the service existed
    regions: tuple[str, ...]  # footprint; the first is the home market
    uhd: float  # chance a recent title is offered in 4K
    subtitles: tuple[tuple[str, float], ...]  # subtitle languages and how often each is offered
    dubs: float  # chance a popular title carries each dub the platform offers
    dub_languages: tuple[str, ...]
    uptake: dict[str, float]
    affinity: dict[str, float] = field(default_factory=dict)
    popularity: float = 1.0
    recency: float = 1.0


def _uptake(cinephile: float, casual: float, family: float, young: float, senior: float, international: float,
            specialist: float) -> dict[str, float]:
    return {a.CINEPHILE: cinephile, a.CASUAL: casual, a.FAMILY: family, a.YOUNG_ADULT: young, a.SENIOR: senior,
            a.INTERNATIONAL: international, a.GENRE_SPECIALIST: specialist}


_EVERYWHERE = r.REGIONS
_NO_SUB_SAHARA = (r.WESTERN_EUROPE, r.NORTH_AMERICA, r.LATIN_AMERICA, r.ASIA_PACIFIC, r.MIDDLE_EAST,
                  r.NORTH_AFRICA)
_MAJOR_SUBTITLES = (("en", 0.95), ("fr", 0.9), ("es", 0.8), ("de", 0.6), ("it", 0.5), ("pt", 0.5))
_MAJOR_DUBS = ("en", "fr", "es", "de", "it", "pt")

PLATFORMS: tuple[Platform, ...] = (
    Platform("TV5MONDE", "free", 0.15, dt.date(2020, 9, 15), _EVERYWHERE, 0.0,
             (("fr", 1.0), ("en", 0.8), ("es", 0.6), ("de", 0.5), ("ar", 0.5), ("pt", 0.4), ("it", 0.3),
              ("nl", 0.3), ("ro", 0.2), ("vi", 0.2), ("ja", 0.15), ("ko", 0.15), ("ru", 0.15)),
             0.6, ("fr",), _uptake(0.35, 0.20, 0.25, 0.15, 0.45, 0.60, 0.15),
             affinity={"french": 3.0, "non_english": 0.8, "classic": 0.3}, popularity=0.3, recency=0.0),
    Platform("Netflix", "subscription", 0.35, dt.date(2007, 1, 16), _EVERYWHERE, 0.6,
             _MAJOR_SUBTITLES + (("ar", 0.4),), 0.7, _MAJOR_DUBS, _uptake(0.60, 0.65, 0.60, 0.80, 0.35, 0.55, 0.60),
             recency=1.2),
    Platform("Amazon Prime", "subscription", 0.30, dt.date(2006, 9, 7), _EVERYWHERE, 0.5,
             _MAJOR_SUBTITLES, 0.5, _MAJOR_DUBS[:5], _uptake(0.45, 0.45, 0.45, 0.45, 0.40, 0.35, 0.45),
             affinity={"classic": 0.3}, recency=0.4),
    Platform("Disney+", "subscription", 0.20, dt.date(2019, 11, 12),
             (r.NORTH_AMERICA, r.WESTERN_EUROPE, r.LATIN_AMERICA, r.ASIA_PACIFIC, r.MIDDLE_EAST), 0.7,
             _MAJOR_SUBTITLES, 0.9, _MAJOR_DUBS, _uptake(0.20, 0.30, 0.75, 0.45, 0.10, 0.15, 0.25),
             affinity={"kids": 3.0}, recency=0.5),
    Platform("HBO Max", "subscription", 0.25, dt.date(2020, 5, 27),
             (r.NORTH_AMERICA, r.LATIN_AMERICA, r.WESTERN_EUROPE, r.ASIA_PACIFIC), 0.5,
             (("en", 0.95), ("es", 0.8), ("pt", 0.6), ("fr", 0.5), ("nl", 0.3)), 0.5, ("en", "es", "pt", "fr"),
             _uptake(0.45, 0.25, 0.20, 0.35, 0.15, 0.25, 0.35), affinity={"arthouse": 0.5}, recency=0.3),
    Platform("Apple TV+", "subscription", 0.15, dt.date(2019, 11, 1), _EVERYWHERE, 1.0,
             _MAJOR_SUBTITLES + (("ar", 0.5), ("ja", 0.5), ("ko", 0.4)), 0.9, _MAJOR_DUBS,
             _uptake(0.30, 0.15, 0.20, 0.30, 0.10, 0.20, 0.15), popularity=0.5, recency=1.5),
    Platform("MUBI", "subscription", 0.10, dt.date(2007, 10, 1), _NO_SUB_SAHARA, 0.15,
             (("en", 0.95), ("fr", 0.7), ("es", 0.6), ("de", 0.5), ("it", 0.5), ("pt", 0.5)), 0.2, ("en", "fr"),
             _uptake(0.55, 0.02, 0.03, 0.08, 0.10, 0.45, 0.05),
             affinity={"arthouse": 2.0, "non_english": 1.5, "classic": 0.6}, popularity=-0.3, recency=-0.3),
    Platform("Criterion Channel", "subscription", 0.08, dt.date(2019, 4, 8), (r.NORTH_AMERICA,), 0.1,
             (("en", 1.0), ("fr", 0.2), ("es", 0.1)), 0.05, ("en",), _uptake(0.50, 0.01, 0.02, 0.05, 0.20, 0.30, 0.05),
             affinity={"classic": 2.0, "arthouse": 1.5, "non_english": 0.8}, popularity=0.0, recency=-1.0),
)
PLATFORM_NAMES: tuple[str, ...] = tuple(p.name for p in PLATFORMS)
DEFAULT_SHARES: dict[str, float] = {p.name: p.share for p in PLATFORMS}
BY_NAME: dict[str, Platform] = {p.name: p for p in PLATFORMS}
