"""Is a MovieLens title non-English, and in which language? Read from the title text alone.

MovieLens has no language column, but its titles carry the signal: a foreign film is listed as
"English title (Original title) (year)" or under its original title, with the original's article
moved to the end ("Misérables, Les") or left in front ("La Cérémonie"). A title part (the main title
or a parenthesised alternate that is not an "a.k.a." English alias) counts as non-English when:
- it has a non-ASCII letter (accents, other scripts);
- it ends with a moved foreign article (", La", ", Der", ", Il", ...) or starts with an unambiguous one
  ("La ", "Le ", "Les ", "L'", "El ", "Il ", "Der ", "Das ", ...; not "Die", "I", "O", "A");
- it has a lowercase word that English title case never leaves lowercase ("de", "y", "et", "di",
  "und", ...): English titles capitalise every word but a few short function words;
- it is an alternate title with a lowercase word English titles do not use (romanised titles such as
  "Dnevnoy dozor"), or a single-word alternate ("Prinsessa").
The language is the one (fr, es, it, de, pt) whose function words, articles and letters occur most in
the non-English parts (ties prefer that order; "ô", "û", "î" are not French evidence: romanised
Japanese uses them); null when nothing points to one (e.g. romanised Japanese or Russian).
Known misses: "Déjà Vu" reads as French; a foreign alternate of several words all capitalised reads as
English; Scandinavian or Dutch titles are non-English but may be given a wrong language.
"""

from __future__ import annotations

import polars as pl

LANGUAGES: tuple[str, ...] = ("fr", "es", "it", "de", "pt")

_YEARISH_SUFFIX = r"\s*\(\d{4}(?:\s*[–-]\s*\d{0,4})?\)\s*$"
_MOVED_ARTICLES = "Le|La|Les|L'|Un|Une|Il|Lo|Gli|I|Der|Die|Das|Ein|Eine|El|Los|Las|O|Os|As|Det|Den|De|Het|En|Et|Ett"
_LEADING_ARTICLES = r"(?:La|Le|Les|Los|Las|El|Il|Lo|Gli|Der|Das|Une|Un|Het) |L'"
_ENGLISH_LOWER = (
    "a|an|the|of|and|or|in|on|at|to|for|from|with|by|as|is|vs|v|into|onto|upon|over|under|about|but|"
    "nor|so|yet|up|out|off|via|n|o'|de"  # "de" as in English proper names is rare in ML; see _FOREIGN_LOWER
)
_FOREIGN_LOWER = (
    "de|du|des|la|le|les|et|y|e|di|da|do|del|della|delle|dei|degli|und|von|der|die|das|dem|den|och|"
    "sur|pour|sans|avec|dans|con|por|para|sin|che|nel|zu|im|mit|em|el|los|las|il|lo|un|une|una|uno|"
    "ein|eine|au|aux|à|est|pas|qui|ist|für|não|dos|das|um|uma|och|är|og|ne|na|ni|no|wa|ga"
)
_MARKERS: dict[str, str] = {
    "fr": r"\b(?:[Ll]e|[Ll]a|[Ll]es|[Dd]es|du|au|aux|et|sur|pour|sans|avec|dans|[Uu]ne|est|pas|qui|mon|ma|"
          r"ces|chez|de)\b|\b[LlDdQqJjNnCc]'|[éèêëçàâœÉÈÊÇ]",
    "es": r"\b(?:[Ee]l|[Ll]os|[Ll]as|[Uu]na|del|y|con|por|para|sin|que|mi|de|la)\b|[ñ¡¿íóáú]",
    "it": r"\b(?:[Ii]l|[Ll]o|[Gg]li|I|della|delle|dei|degli|di|che|e|per|[Uu]no|[Uu]na|nel|non)\b|[ìòè]",
    "de": r"\b(?:[Dd]er|[Dd]ie|[Dd]as|[Ee]in|[Ee]ine|und|von|im|mit|ist|den|dem|auf|für|zu|zum)\b|[äöüßÄÖÜ]",
    "pt": r"\b(?:[Oo]s?|[Aa]s|[Uu]ma?|do|da|dos|das|não|em|com|e)\b|[ãõâêç]",
}


def _is_foreign_part(part: pl.Expr, alternate: pl.Expr) -> pl.Expr:
    words = part.str.extract_all(r"[^\s:,;!?.\-\"]+")
    lowercase_words = words.list.eval(pl.element().filter(pl.element().str.contains(r"^[a-zà-ÿ']+$")))
    foreign_lower = lowercase_words.list.eval(pl.element().is_in(_FOREIGN_LOWER.split("|"))).list.any()
    non_english_lower = lowercase_words.list.eval(~pl.element().is_in(_ENGLISH_LOWER.split("|"))).list.any()
    return (
        part.str.contains(r"[^\x00-\x7F¹²³½¼¾°·–—’‘“”…×]")
        | part.str.contains(rf", (?:{_MOVED_ARTICLES})$")
        | part.str.contains(rf"^(?:{_LEADING_ARTICLES})")
        | foreign_lower.fill_null(False)
        | (alternate & (non_english_lower.fill_null(False) | (words.list.len() == 1)))
    )


def title_languages(titles: pl.DataFrame) -> pl.DataFrame:
    """`titles` (movie_id, title) -> movie_id, non_english bool, original_language str (null if unknown)."""
    base = pl.col("title").str.strip_chars().str.replace(_YEARISH_SUFFIX, "").str.strip_chars()
    parts = (
        titles.select("movie_id", base.alias("text"))
        .with_columns(
            pl.concat_list(
                pl.col("text").str.replace_all(r"\s*\([^()]*\)", "").str.strip_chars(),
                pl.col("text").str.extract_all(r"\(([^()]*)\)").list.eval(pl.element().str.slice(1).str.head(-1)),
            ).alias("part"),
        )
        .explode("part")
        .with_columns(pl.int_range(pl.len()).over("movie_id").alias("position"))
        .filter(pl.col("part").is_not_null() & (pl.col("part") != ""))
        .filter(~pl.col("part").str.contains(r"^(?i:a\.k\.a\.?|aka)\s"))
        .with_columns(_is_foreign_part(pl.col("part"), pl.col("position") > 0).alias("foreign"))
    )
    foreign_text = parts.filter("foreign").group_by("movie_id").agg(pl.col("part").str.join(" | ").alias("text"))
    scores = foreign_text.select(
        "movie_id", *[pl.col("text").str.count_matches(_MARKERS[lang]).alias(lang) for lang in LANGUAGES]
    )
    best = pl.concat_list(LANGUAGES).list.arg_max()
    guessed = scores.select(
        "movie_id",
        pl.lit(True).alias("non_english"),
        pl.when(pl.max_horizontal(LANGUAGES) > 0)
        .then(pl.lit(pl.Series(LANGUAGES)).get(best))
        .otherwise(None)
        .alias("original_language"),
    )
    return (
        titles.select("movie_id")
        .join(guessed, on="movie_id", how="left")
        .with_columns(
            pl.col("non_english").fill_null(False),
            pl.when(pl.col("non_english")).then(pl.col("original_language")).otherwise(pl.lit("en"))
            .alias("original_language"),
        )
    )
