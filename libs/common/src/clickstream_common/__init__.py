"""clickstream_common."""
