"""The durable log and the state store; SQLite is the embedded backend."""
