"""Word lists for the synthetic MovieLens release (see `sample.py`).

All words are the project's own; nothing here is taken from a MovieLens file. Lists are grouped so
that the generator can pick per language or per genre theme with one vectorised gather.
"""

from __future__ import annotations

GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
NO_GENRES = "(no genres listed)"

# How often each genre is a movie's primary genre (roughly the ml-25m shares).
GENRE_WEIGHT: dict[str, float] = {
    "Action": 7.0, "Adventure": 3.5, "Animation": 2.5, "Children": 2.0, "Comedy": 15.0,
    "Crime": 4.5, "Documentary": 5.5, "Drama": 22.0, "Fantasy": 2.0, "Film-Noir": 0.4,
    "Horror": 6.0, "IMAX": 0.2, "Musical": 1.0, "Mystery": 2.0, "Romance": 5.0, "Sci-Fi": 3.0,
    "Thriller": 7.0, "War": 1.5, "Western": 1.3,
}

# Which genres come along with a primary genre (so Animation goes with Children, War with Drama).
GENRE_AFFINITY: dict[str, dict[str, float]] = {
    "Action": {"Adventure": 3, "Thriller": 3, "Sci-Fi": 2, "Crime": 2, "War": 0.5},
    "Adventure": {"Action": 3, "Fantasy": 2, "Comedy": 2, "Children": 1, "Sci-Fi": 1},
    "Animation": {"Children": 6, "Comedy": 3, "Adventure": 3, "Fantasy": 2, "Musical": 0.5},
    "Children": {"Animation": 3, "Comedy": 3, "Adventure": 2, "Fantasy": 2, "Musical": 0.5},
    "Comedy": {"Drama": 3, "Romance": 3, "Crime": 1, "Children": 0.5},
    "Crime": {"Thriller": 3, "Drama": 3, "Mystery": 1.5, "Action": 1.5, "Film-Noir": 0.3},
    "Documentary": {"Musical": 1, "War": 1, "Drama": 0.5},
    "Drama": {"Romance": 3, "Comedy": 2, "Thriller": 2, "Crime": 2, "War": 1},
    "Fantasy": {"Adventure": 3, "Comedy": 2, "Children": 1.5, "Animation": 1, "Romance": 1},
    "Film-Noir": {"Crime": 4, "Drama": 3, "Mystery": 2, "Thriller": 2, "Romance": 0.5},
    "Horror": {"Thriller": 4, "Mystery": 2, "Sci-Fi": 1.5, "Comedy": 0.8},
    "IMAX": {"Action": 3, "Adventure": 3, "Sci-Fi": 2, "Documentary": 2, "Animation": 2},
    "Musical": {"Comedy": 3, "Romance": 3, "Children": 1, "Drama": 1},
    "Mystery": {"Thriller": 3, "Crime": 3, "Drama": 2, "Horror": 1},
    "Romance": {"Comedy": 3, "Drama": 3, "Musical": 0.5},
    "Sci-Fi": {"Action": 3, "Adventure": 2, "Thriller": 2, "Horror": 1},
    "Thriller": {"Crime": 3, "Drama": 3, "Action": 2, "Mystery": 2, "Horror": 1.5},
    "War": {"Drama": 4, "Action": 2, "Adventure": 0.5},
    "Western": {"Action": 2, "Drama": 2, "Adventure": 2, "Comedy": 0.5},
}

# ---------------------------------------------------------------- English titles
EN_ADJECTIVES: tuple[str, ...] = (
    "Silent", "Broken", "Last", "Lost", "Hidden", "Golden", "Dark", "Wild", "Crimson", "Frozen",
    "Burning", "Secret", "Little", "Big", "Long", "Sweet", "Bitter", "Blue", "Red", "Black",
    "White", "Empty", "Endless", "Electric", "Savage", "Quiet", "Restless", "Midnight", "Sudden",
    "Final", "Lonely", "Strange", "Perfect", "Dangerous", "Forgotten", "Eternal", "Wicked",
    "Brave", "Fallen", "Distant", "Iron", "Crystal", "Shattered", "Hollow", "Lucky", "Deadly",
    "Gentle", "Raging", "Sacred", "Haunted", "Stolen", "Twisted", "Velvet", "Wandering",
    "Northern", "Southern", "Invisible", "Infinite", "Bright", "Hungry", "Dirty", "Young", "Old",
    "Second", "Modern", "Tender", "Fragile", "Lethal", "Blind", "Royal", "Cold", "Summer",
    "Winter", "Autumn", "Crooked", "Scarlet", "Paper", "Glass", "Neon", "Rusty",
)
EN_NOUNS: tuple[str, ...] = (
    "Heart", "Road", "River", "City", "Night", "Day", "House", "Dream", "Game", "Children",
    "Story", "Man", "Woman", "Girl", "Boy", "Stranger", "Promise", "Journey", "Garden", "Window",
    "Storm", "Sky", "Sea", "Island", "Mountain", "Bridge", "Station", "Train", "Letter", "Song",
    "Kiss", "Truth", "Mirror", "Shadow", "Light", "Fire", "Rain", "Snow", "Wind", "Voice",
    "Memory", "Affair", "Escape", "Return", "Family", "Brothers", "Sisters", "Neighbors",
    "Wedding", "Party", "Weekend", "Holiday", "Hour", "Season", "Kingdom", "Country", "Town",
    "Street", "Hotel", "Diner", "Circus", "Orchestra", "Painter", "Teacher", "Doctor", "Lawyer",
    "Sailor", "Pilot", "Thief", "King", "Queen", "Prince", "Widow", "Orphan", "Harvest",
    "Lighthouse", "Orchard", "Carnival", "Frontier",
)
# Nouns that fit a genre, indexed like GENRES, so titles hint at what the movie is.
EN_THEME_NOUNS: tuple[tuple[str, ...], ...] = (
    ("Fury", "Strike", "Vendetta", "Showdown", "Bullet", "Impact", "Pursuit", "Getaway", "Target"),
    ("Quest", "Expedition", "Treasure", "Voyage", "Jungle", "Map", "Temple", "Odyssey", "Raft"),
    ("Bunny", "Robot", "Dragon", "Toybox", "Penguins", "Balloon", "Kitten", "Pixel", "Puppet"),
    ("Puppy", "Treehouse", "Playground", "Pony", "Snowman", "Birthday", "Classmates", "Kite"),
    ("Mix-Up", "Blunder", "Roommates", "Vacation", "Prank", "Bachelor", "Neighbors", "Fiasco"),
    ("Heist", "Gang", "Mob", "Hustle", "Racket", "Getaway", "Alibi", "Confession", "Syndicate"),
    ("Portrait", "Archive", "Chronicle", "Inquiry", "Witness", "Testimony", "Record", "Voices"),
    ("Silence", "Inheritance", "Reunion", "Farewell", "Sacrifice", "Mother", "Father", "Years"),
    ("Wizard", "Sorceress", "Kingdom", "Enchantment", "Unicorn", "Curse", "Spellbook", "Realm"),
    ("Alley", "Double-Cross", "Dame", "Racket", "Fog", "Nightclub", "Informer", "Setup"),
    ("Hauntings", "Crypt", "Possession", "Cellar", "Ritual", "Creature", "Scream", "Ghoul"),
    ("Planet", "Ocean", "Summit", "Galaxy", "Reef", "Horizon", "Cosmos", "Glacier"),
    ("Melody", "Chorus", "Ballroom", "Rhythm", "Serenade", "Encore", "Tune", "Stage"),
    ("Riddle", "Disappearance", "Clue", "Puzzle", "Enigma", "Locket", "Cipher", "Manor"),
    ("Love", "Romance", "Sweetheart", "Honeymoon", "Valentine", "Rendezvous", "Darling"),
    ("Android", "Colony", "Starship", "Signal", "Mutation", "Orbit", "Clone", "Paradox"),
    ("Conspiracy", "Hostage", "Stalker", "Deadline", "Suspect", "Trap", "Obsession", "Witness"),
    ("Battalion", "Trenches", "Frontline", "Siege", "Regiment", "Armistice", "Platoon", "Flag"),
    ("Outlaw", "Sheriff", "Canyon", "Stagecoach", "Ranch", "Gunslinger", "Posse", "Saloon"),
)
EN_NAMES: tuple[str, ...] = (
    "Jack", "Mary", "Ruby", "Frank", "Eddie", "Lola", "Henry", "Grace", "Billy", "Nora",
    "Walter", "Alice", "Sam", "Maggie", "Oscar", "Iris", "Leo", "Hazel", "Otto", "Clara",
    "José", "Zoë", "Björn", "Renée", "Chloé", "Søren", "Inés", "Jürgen", "Noël", "Agnès",
)
EN_PLACES: tuple[str, ...] = (
    "Paris", "Berlin", "Tokyo", "Montréal", "Brooklyn", "Texas", "Marseille", "Bogotá",
    "Zürich", "Chicago", "Lisbon", "Québec", "Nevada", "Alaska", "Vienna", "Harlem", "Kraków",
    "Saigon", "Havana", "Dublin", "Naples", "São Paulo", "Reykjavík", "Tangier",
)
EN_SUBTITLES: tuple[str, ...] = (
    "Part II", "The Return", "The Beginning", "Revenge", "Reckoning", "Resurrection",
    "A New Dawn", "The Final Chapter", "Origins", "Legacy", "The Next Generation",
    "Homecoming", "The Lost Tapes", "Director's Cut", "Another Story", "Rebirth",
)
EN_ARTICLES: tuple[str, ...] = ("The", "A")

# ---------------------------------------------------------------- other languages
# Per language: nouns with their article (the article MovieLens moves to the end) and endings.
FOREIGN: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "fr": (
        (
            ("Cité", "La"), ("Jardin", "Le"), ("Enfants", "Les"), ("Été", "L'"), ("Nuit", "La"),
            ("Maison", "La"), ("Voyage", "Le"), ("Amour", "L'"), ("Château", "Le"), ("Mer", "La"),
            ("Femme", "La"), ("Homme", "L'"), ("Fille", "La"), ("Garçon", "Le"),
            ("Secret", "Le"), ("Hiver", "L'"), ("Printemps", "Le"), ("Rivière", "La"),
            ("Ville", "La"), ("Chemin", "Le"), ("Fête", "La"), ("Bête", "La"), ("Île", "L'"),
            ("Étranger", "L'"), ("Passagers", "Les"), ("Vacances", "Les"), ("Regard", "Le"),
            ("Silence", "Le"), ("Cœur", "Le"), ("Mémoire", "La"), ("Lumière", "La"),
            ("Ombre", "L'"), ("Chambre", "La"), ("Gare", "La"), ("Fenêtre", "La"), ("Rêve", "Le"),
            ("Vent", "Le"), ("Pluie", "La"), ("Danse", "La"), ("Chanson", "La"),
            ("Histoire", "L'"), ("Ciel", "Le"), ("Mariage", "Le"), ("Juge", "Le"),
            ("Frères", "Les"), ("Sœurs", "Les"), ("Âme", "L'"), ("Épreuve", "L'"),
            ("Hôtel", "L'"), ("Bal", "Le"), ("Goût", "Le"), ("Rue", "La"), ("Forêt", "La"),
            ("Quai", "Le"), ("Boulanger", "Le"), ("Lettre", "La"), ("Promesse", "La"),
            ("Déserteur", "Le"), ("Baiser", "Le"), ("Éclipse", "L'"),
        ),
        (
            "d'été", "d'hiver", "de la nuit", "du silence", "sans retour", "des anges",
            "du dimanche", "de minuit", "de Marseille", "du bout du monde", "des oubliés",
            "en automne", "à Paris", "de ma mère", "du lac", "des loups", "sous la pluie",
            "au bord de la mer", "de velours", "de cristal", "des rêves", "du désert", "en fuite",
            "à l'aube", "du phare", "de Lyon", "des songes", "d'Élise", "du faubourg",
            "de la forêt", "sans nom", "du Québec", "à la campagne", "de l'écluse",
        ),
    ),
    "es": (
        (
            ("Camino", "El"), ("Noche", "La"), ("Niños", "Los"), ("Mujeres", "Las"),
            ("Corazón", "El"), ("Señor", "El"), ("Montaña", "La"), ("Año", "El"),
            ("Canción", "La"), ("Sueño", "El"), ("Ciudad", "La"), ("Viaje", "El"),
            ("Espejo", "El"), ("Lágrimas", "Las"), ("Jardín", "El"), ("Baile", "El"),
            ("Mañana", "La"), ("Pasión", "La"), ("Hermanos", "Los"), ("Isla", "La"),
        ),
        (
            "del silencio", "de la luna", "sin nombre", "de Bogotá", "en el desierto",
            "de mi padre", "del mar", "de otoño", "de invierno", "de los sueños", "para siempre",
            "de Sevilla", "bajo la lluvia", "de medianoche", "del olvido",
        ),
    ),
    "de": (
        (
            ("Haus", "Das"), ("Nacht", "Die"), ("Wald", "Der"), ("Himmel", "Der"),
            ("Mädchen", "Das"), ("Zug", "Der"), ("Brücke", "Die"), ("Stadt", "Die"),
            ("Fräulein", "Das"), ("König", "Der"), ("Schlüssel", "Der"), ("Spiegel", "Der"),
            ("Träume", "Die"), ("Söhne", "Die"), ("Tür", "Die"), ("Gärtner", "Der"),
        ),
        (
            "am See", "im Schnee", "über Berlin", "ohne Namen", "der Erinnerung", "aus Zürich",
            "im Nebel", "am Ende der Welt", "im Sommer", "des Glücks", "der Träume", "für immer",
            "aus Köln", "im Hafen",
        ),
    ),
    "it": (
        (
            ("Giardino", "Il"), ("Notte", "La"), ("Ragazzi", "I"), ("Amici", "Gli"),
            ("Estate", "L'"), ("Uomo", "L'"), ("Stanza", "La"), ("Viaggio", "Il"),
            ("Città", "La"), ("Sogno", "Lo"), ("Mare", "Il"), ("Fratelli", "I"), ("Cuore", "Il"),
            ("Strada", "La"), ("Luna", "La"), ("Canzone", "La"),
        ),
        (
            "di mezzanotte", "del silenzio", "di Roma", "senza nome", "d'inverno", "dei sogni",
            "sul lago", "della luna", "per sempre", "di Napoli", "di città", "del porto",
        ),
    ),
    "pt": (
        (
            ("Cidade", "A"), ("Caminho", "O"), ("Noite", "A"), ("Irmãos", "Os"),
            ("Canção", "A"), ("Coração", "O"), ("Mãe", "A"), ("Sonho", "O"), ("Estrelas", "As"),
            ("Ilha", "A"), ("Pescador", "O"), ("Saudade", "A"),
        ),
        (
            "do mar", "sem nome", "de São Paulo", "da lua", "do sertão", "para sempre",
            "de inverno", "dos sonhos", "da chuva",
        ),
    ),
}
# Share of titles per language: English first, a good share of French.
LANGUAGE_WEIGHT: dict[str, float] = {
    "en": 0.55, "fr": 0.25, "es": 0.06, "de": 0.06, "it": 0.05, "pt": 0.03,
}

# ---------------------------------------------------------------- user tags (tags.csv)
TAGS_GENERIC: tuple[str, ...] = (
    "funny", "atmospheric", "visually appealing", "thought-provoking", "twist ending",
    "based on a book", "great soundtrack", "slow", "overrated", "underrated", "classic",
    "must see", "boring", "predictable", "beautiful", "quirky", "cult film", "nonlinear",
    "surreal", "stylized", "violent", "feel-good", "tearjerker", "cinematography", "good acting",
    "dialogue", "remake", "sequel", "black and white", "in my queue", "seen more than once",
    "DVD", "to watch", "own it", "fun", "long", "bittersweet", "melancholic", "witty", "clever",
    "cheesy", "pretentious", "inspiring", "French", "Paris", "New York", "mélancolique", "drôle",
    "très bien", "naïve", "für Kinder", "película de culto", "rewatch", "slow burn",
)
TAGS_THEMED: tuple[tuple[str, ...], ...] = (
    ("explosions", "car chase", "martial arts", "one-liners", "fight scenes"),
    ("treasure hunt", "road trip", "exotic locations", "swashbuckler", "survival"),
    ("computer animated", "hand-drawn", "stop motion", "talking animals", "cute"),
    ("family", "kids", "coming of age", "school", "animals"),
    ("hilarious", "slapstick", "satire", "parody", "dark comedy", "comedie"),
    ("heist", "gangsters", "mafia", "police", "organized crime", "noir-ish"),
    ("true story", "interviews", "history", "nature", "politics", "activism"),
    ("emotional", "family drama", "character study", "melodrama", "realistic"),
    ("magic", "dragons", "fairy tale", "mythology", "wizards"),
    ("femme fatale", "detective", "shadows", "hard-boiled", "voice-over"),
    ("gory", "creepy", "zombies", "haunted house", "jump scares", "slasher"),
    ("imax", "big screen", "3D", "spectacle"),
    ("songs", "dancing", "broadway", "catchy tunes", "choreography"),
    ("whodunit", "investigation", "suspense", "clues", "puzzle"),
    ("love story", "romantic", "chick flick", "sweet", "love triangle"),
    ("space", "aliens", "time travel", "dystopia", "robots", "artificial intelligence"),
    ("tense", "psychological", "paranoia", "serial killer", "plot twist"),
    ("world war ii", "anti-war", "soldiers", "battle scenes", "military"),
    ("cowboys", "gunfights", "desert", "frontier", "spaghetti western"),
)
# Tags that need CSV quoting or keep stray whitespace, as real user tags do.
TAGS_WITH_COMMA: tuple[str, ...] = (
    "dark, gritty", "funny, sad", "slow, but worth it", "long, boring", "weird, in a good way",
)
TAGS_WITH_QUOTES: tuple[str, ...] = ('"artsy"', 'so-called "classic"', '"twist" ending')

# ---------------------------------------------------------------- genome tags
GENOME_THEMED: tuple[tuple[str, ...], ...] = (
    ("action", "fight choreography", "chase", "explosions", "stunts", "shootout", "revenge",
     "bodyguard", "mercenary", "vigilante", "hand-to-hand combat", "kung fu"),
    ("adventure", "treasure", "jungle", "expedition", "pirates", "quest", "lost city",
     "shipwreck", "road movie", "mountain climbing", "desert island", "swordplay"),
    ("animation", "animated", "cartoon", "computer animation", "claymation", "anime",
     "hand drawn", "talking animals", "stop-motion", "colorful", "voice acting", "cel shading"),
    ("children", "kids", "family", "childhood", "coming-of-age", "school", "talking toys",
     "friendship", "pets", "fairy godmother", "summer camp", "teen"),
    ("comedy", "humor", "slapstick", "satire", "parody", "spoof", "romantic comedy",
     "black comedy", "screwball", "sitcom", "stand-up", "sarcasm"),
    ("crime", "heist", "gangsters", "mafia", "police", "corruption", "drug trade", "prison",
     "con artists", "bank robbery", "detective", "organized crime"),
    ("documentary", "interviews", "true story", "biography", "history", "nature", "politics",
     "environment", "archival footage", "investigative", "music documentary", "wildlife"),
    ("drama", "melodrama", "family drama", "grief", "addiction", "poverty", "illness",
     "character study", "marriage", "redemption", "loneliness", "small town"),
    ("fantasy", "magic", "dragons", "wizards", "fairy tale", "mythology", "sword and sorcery",
     "enchanted forest", "prophecy", "elves", "curse", "parallel world"),
    ("film noir", "femme fatale", "hard-boiled", "private eye", "voice-over narration",
     "double cross", "low-key lighting", "cynicism", "nightclub", "blackmail", "amnesia",
     "fall guy"),
    ("horror", "gore", "zombies", "vampires", "haunted house", "slasher", "creepy", "demons",
     "possession", "jump scares", "monster", "body horror"),
    ("imax", "spectacle", "3d", "big screen", "aerial footage", "space footage", "immersive",
     "panoramic", "large format", "epic scale", "planetarium", "ocean footage"),
    ("musical", "singing", "dancing", "broadway", "songs", "choreography", "opera", "band",
     "jazz", "rock and roll", "hip hop", "ballet"),
    ("mystery", "whodunit", "investigation", "clues", "secrets", "puzzle", "conspiracy theory",
     "missing person", "locked room", "red herring", "sleuth", "cold case"),
    ("romance", "love story", "romantic", "love triangle", "first love", "wedding",
     "forbidden love", "long-distance relationship", "passion", "unrequited love", "dating",
     "soulmates"),
    ("sci-fi", "space", "aliens", "time travel", "dystopia", "robots", "artificial intelligence",
     "cyberpunk", "post-apocalyptic", "space opera", "genetic engineering", "virtual reality"),
    ("thriller", "suspense", "psychological thriller", "paranoia", "serial killer", "hostage",
     "stalker", "plot twist", "tense", "cat and mouse", "kidnapping", "espionage"),
    ("war", "world war ii", "world war i", "anti-war", "soldiers", "battle", "military",
     "holocaust", "resistance", "navy", "prisoner of war", "trench warfare"),
    ("western", "cowboys", "gunfight", "frontier", "spaghetti western", "outlaws", "sheriff",
     "saloon", "cattle drive", "gold rush", "horses", "revisionist western"),
)
GENOME_ACCLAIM: tuple[str, ...] = (
    "masterpiece", "oscar winner", "great acting", "excellent script", "great cinematography",
    "criterion", "classic", "imdb top 250", "influential", "award-winning", "timeless",
    "brilliant", "powerful", "moving", "great ending",
)
GENOME_GENERIC: tuple[str, ...] = (
    "atmospheric", "visually appealing", "thought-provoking", "twist ending", "based on a book",
    "great soundtrack", "quirky", "cult film", "nonlinear", "surreal", "stylized", "violence",
    "feel-good", "tearjerker", "dialogue", "remake", "sequel", "black and white", "bittersweet",
    "melancholic", "witty", "clever", "cheesy", "pretentious", "inspirational", "slow paced",
    "fast paced", "predictable", "original", "weird", "dark", "light", "beautiful", "ugly",
    "long", "short", "independent film", "low budget", "big budget", "foreign", "french",
    "british", "japanese", "italian", "spanish", "german", "new york city", "paris", "london",
    "los angeles", "island", "small cast", "ensemble cast", "strong female lead", "narrated",
    "flashbacks", "dream sequence", "based on true events", "book adaptation", "series",
)
GENOME_MODIFIERS: tuple[str, ...] = (
    "great", "dark", "quirky", "clever", "slow", "bleak", "funny", "stylish", "gritty",
    "original", "weird", "brutal", "gentle", "complex", "cheesy", "beautiful", "surreal",
    "tense", "campy", "bittersweet", "epic", "intimate", "political", "realistic", "absurd",
)
