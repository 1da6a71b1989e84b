"""The processor service: consumer loop, embedded publisher, health/metrics, process assembly."""
