"""What photohook tells its operators: logs and Prometheus metrics."""
