"""Identity: link anonymous visitors and devices to people through login events."""
