"""Reliable delivery over RabbitMQ: outbox relay, topology, workers, retry, dead letters."""
