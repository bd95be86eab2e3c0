"""MovieLens title conventions, as polars expressions.

MovieLens writes "City of Lost Children, The (Cité des enfants perdus, La) (1995)": the year in a
trailing "(YYYY)", leading articles moved to the end of each title part. People and embedding
models read the natural order better, so `display_title` moves them back.
"""

from __future__ import annotations

import polars as pl

# Articles MovieLens moves to the end, in the languages of its catalogue.
ARTICLES = (
    "The", "A", "An", "La", "Le", "Les", "L'", "Un", "Une", "Des", "Il", "Lo", "Gli", "I",
    "Der", "Die", "Das", "Ein", "Eine", "El", "Los", "Las", "O", "Os", "As", "Det", "Den", "De", "Het",
)
_ARTICLE_ALT = "|".join(ARTICLES)
_YEAR = r"\((\d{4})\)\s*$"
_YEARISH_SUFFIX = r"\s*\(\d{4}(?:\s*[–-]\s*\d{0,4})?\)\s*$"


def year_from_title(title: pl.Expr) -> pl.Expr:
    """The year of a trailing "(YYYY)"; null when absent or a range such as "(2006–2007)"."""
    return title.str.extract(_YEAR, 1).cast(pl.Int32, strict=False)


def _front_article(part: pl.Expr) -> pl.Expr:
    moved = part.str.replace(rf"^(.*), ({_ARTICLE_ALT})$", "${2} ${1}")
    return moved.str.replace(r"^(L') (.*)$", "${1}${2}")  # "L'" takes no space: "L'Homme ..."


def display_title(title: pl.Expr) -> pl.Expr:
    """Title without its year suffix, with trailing articles moved to the front of each part."""
    base = title.str.strip_chars().str.replace(_YEARISH_SUFFIX, "").str.strip_chars()
    main = base.str.extract(r"^(.*?)(?:\s+\((.*)\))?$", 1)
    alternate = base.str.extract(r"^(.*?)(?:\s+\((.*)\))?$", 2)
    return (
        pl.when(alternate.is_not_null() & (alternate != ""))
        .then(pl.concat_str([_front_article(main), pl.lit(" ("), _front_article(alternate), pl.lit(")")]))
        .otherwise(_front_article(base))
    )
