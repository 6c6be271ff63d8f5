"""streamer: durable ingest and fan-out of IoT usage records and events to each customer's
destinations, in the format version each stream asked for."""
