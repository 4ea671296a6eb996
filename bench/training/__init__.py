"""Training: configuration (config), objectives (losses), the loop (trainer), DDP helpers."""
