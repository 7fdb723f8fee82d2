"""Widgets the screens share: leaderboard, score histogram, run tables."""
