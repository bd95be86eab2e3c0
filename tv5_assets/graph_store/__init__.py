"""Graph store stage: the knowledge graph in Neo4j (Media, User, Genre, Tag, Platform and their links)."""
