"""``krakenbot record``: Kraken's public WebSocket v2 written to files for replay and backtests.

``recorder`` is the feed with a tap (every frame written as received, checksums verified
through the daemon's own frames path, gaps marked); ``files`` writes the lines into hourly
or size-bounded gzip files and survives a full disk; ``index`` lists the files, symbols and
time ranges. The command with its ``/metrics`` and ``/healthz`` is ``bot.service.recorder``
(an HTTP face is the service layer's). The line format
(frames and gap markers) is ``bot.kraken.capture``'s, which ``krakenbot replay`` reads.
"""
