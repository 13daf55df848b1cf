"""The live dashboard: the page, its JSON and charts, pushed over Server-Sent Events.

``state`` (the status JSON), ``history`` (the chart series), ``figures`` (equity, holds,
our quotes), ``server`` (the routes and the stream) and ``static/`` (HTML, CSS, JS).
"""
