"""Where synthetic users live: a francophone-first market mix fitting TV5MONDE, plus other markets.

Two thirds of users are in French-speaking markets (France, Belgium, Switzerland, Luxembourg,
Canada-Quebec, francophone West, Central and North Africa, Haiti, Lebanon); the rest in large
markets where TV5MONDE is also carried. Each country has an ISO 3166-1 alpha-2 code, a region (the
unit streaming rights are sold in, shared with `availability.regions`), a Faker locale for names
(fr_FR where Faker has no locale of the country, e.g. Senegal; fr_DZ's Maghreb names for Morocco,
Algeria and Tunisia) and its mix of preferred languages (ISO 639-1).
"""

from __future__ import annotations

from dataclasses import dataclass

WESTERN_EUROPE = "Western Europe"
NORTH_AMERICA = "North America"
WEST_AFRICA = "West Africa"
CENTRAL_AFRICA = "Central Africa"
NORTH_AFRICA = "North Africa"
LATIN_AMERICA = "Latin America & Caribbean"
ASIA_PACIFIC = "Asia-Pacific"
MIDDLE_EAST = "Middle East"
REGIONS: tuple[str, ...] = (
    WESTERN_EUROPE, NORTH_AMERICA, WEST_AFRICA, CENTRAL_AFRICA, NORTH_AFRICA, LATIN_AMERICA, ASIA_PACIFIC,
    MIDDLE_EAST,
)


@dataclass(frozen=True)
class Country:
    code: str  # ISO 3166-1 alpha-2
    region: str
    weight: float  # percent of users
    locale: str  # Faker locale of its names
    languages: tuple[tuple[str, float], ...]  # preferred-language mix (ISO 639-1, weight)


COUNTRIES: tuple[Country, ...] = (
    Country("FR", WESTERN_EUROPE, 26, "fr_FR", (("fr", 1.0),)),
    Country("BE", WESTERN_EUROPE, 6, "fr_BE", (("fr", 0.6), ("nl", 0.4))),
    Country("CH", WESTERN_EUROPE, 4, "fr_CH", (("fr", 0.5), ("de", 0.4), ("it", 0.1))),
    Country("LU", WESTERN_EUROPE, 1, "fr_FR", (("fr", 0.5), ("de", 0.3), ("lb", 0.2))),
    Country("CA", NORTH_AMERICA, 8, "fr_CA", (("fr", 0.75), ("en", 0.25))),
    Country("US", NORTH_AMERICA, 7, "en_US", (("en", 0.85), ("es", 0.15))),
    Country("GB", WESTERN_EUROPE, 5, "en_GB", (("en", 1.0),)),
    Country("DE", WESTERN_EUROPE, 4, "de_DE", (("de", 1.0),)),
    Country("ES", WESTERN_EUROPE, 3, "es_ES", (("es", 1.0),)),
    Country("IT", WESTERN_EUROPE, 3, "it_IT", (("it", 1.0),)),
    Country("PT", WESTERN_EUROPE, 1, "pt_PT", (("pt", 1.0),)),
    Country("NL", WESTERN_EUROPE, 1, "nl_NL", (("nl", 1.0),)),
    Country("SN", WEST_AFRICA, 3, "fr_FR", (("fr", 0.7), ("wo", 0.3))),
    Country("CI", WEST_AFRICA, 3, "fr_FR", (("fr", 1.0),)),
    Country("ML", WEST_AFRICA, 1, "fr_FR", (("fr", 0.6), ("bm", 0.4))),
    Country("BF", WEST_AFRICA, 1, "fr_FR", (("fr", 1.0),)),
    Country("CM", CENTRAL_AFRICA, 3, "fr_FR", (("fr", 0.8), ("en", 0.2))),
    Country("CD", CENTRAL_AFRICA, 2, "fr_FR", (("fr", 0.8), ("ln", 0.2))),
    Country("GA", CENTRAL_AFRICA, 1, "fr_FR", (("fr", 1.0),)),
    Country("MA", NORTH_AFRICA, 3, "fr_DZ", (("fr", 0.5), ("ar", 0.5))),
    Country("DZ", NORTH_AFRICA, 2, "fr_DZ", (("fr", 0.5), ("ar", 0.5))),
    Country("TN", NORTH_AFRICA, 2, "fr_DZ", (("fr", 0.5), ("ar", 0.5))),
    Country("BR", LATIN_AMERICA, 3, "pt_BR", (("pt", 1.0),)),
    Country("MX", LATIN_AMERICA, 2, "es_MX", (("es", 1.0),)),
    Country("AR", LATIN_AMERICA, 1, "es_AR", (("es", 1.0),)),
    Country("HT", LATIN_AMERICA, 1, "fr_FR", (("fr", 0.6), ("ht", 0.4))),
    Country("VN", ASIA_PACIFIC, 1, "vi_VN", (("vi", 0.8), ("fr", 0.2))),
    Country("AU", ASIA_PACIFIC, 1, "en_AU", (("en", 1.0),)),
    Country("LB", MIDDLE_EAST, 1, "ar_AA", (("ar", 0.5), ("fr", 0.4), ("en", 0.1))),
)

# Second language by first language: francophones add English first, others add French or English.
SECONDARY_LANGUAGES: dict[str, tuple[tuple[str, float], ...]] = {
    "fr": (("en", 0.6), ("es", 0.12), ("de", 0.08), ("it", 0.06), ("ar", 0.08), ("pt", 0.06)),
    "en": (("fr", 0.5), ("es", 0.35), ("de", 0.15)),
    "de": (("en", 0.55), ("fr", 0.45)),
    "nl": (("fr", 0.5), ("en", 0.5)),
    "it": (("fr", 0.5), ("en", 0.5)),
    "es": (("en", 0.55), ("fr", 0.3), ("pt", 0.15)),
    "pt": (("en", 0.45), ("es", 0.35), ("fr", 0.2)),
    "ar": (("fr", 0.7), ("en", 0.3)),
    "lb": (("fr", 0.6), ("de", 0.4)),
    "vi": (("fr", 0.5), ("en", 0.5)),
    "wo": (("fr", 1.0),), "bm": (("fr", 1.0),), "ln": (("fr", 1.0),), "ht": (("fr", 1.0),),
}

LANGUAGES: tuple[str, ...] = tuple(sorted(
    {lang for c in COUNTRIES for lang, _ in c.languages}
    | {lang for mix in SECONDARY_LANGUAGES.values() for lang, _ in mix}
))
