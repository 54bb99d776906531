"""Engine: the training loop, evaluation, optimizer and schedules, checkpoints, metrics and run logs."""
