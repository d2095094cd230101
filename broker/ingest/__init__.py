"""Ingestion: decoding alerts, the filter language, the batch pipeline, Kafka consumers and replay."""
