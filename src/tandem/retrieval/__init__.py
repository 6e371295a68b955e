"""tandem.retrieval: finding passages - lexical (BM25), dense (embeddings) and both fused."""
