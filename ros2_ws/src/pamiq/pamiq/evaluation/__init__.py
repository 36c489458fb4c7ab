"""Evaluation: how far a policy explores the Doom world, against baselines, with figures."""
