"""Media capture: video frames and their preprocessing, the one audio format and its sources."""
