"""clickstream_generator."""
