"""Measuring, apart from acting: Prometheus queries and pod health read from the API."""
