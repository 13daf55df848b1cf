"""Notifications: what happened, told to a webhook or a Telegram chat without delaying
trading.

``notice`` (a message and its level), ``rules`` (which changes between two pictures of the
daemon are worth a message; fills batched), ``payloads`` (each service's JSON) and
``sender`` (bounded queues, a rate limit, retries, delivery in its own task).
"""
