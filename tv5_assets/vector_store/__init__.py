"""Vector store stage: the media and user vector collections in Milvus (Lite or a server)."""
