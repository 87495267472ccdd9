"""clickstream_rabbit_bridge."""
