"""clickstream_user_state."""
