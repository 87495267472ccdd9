"""clickstream_enricher."""
