"""``krakenbot optimize``: a parameter search over backtests (Optuna), walk-forward checked.

``space`` reads ``space.yaml``; ``walkforward`` splits the data's time; ``trial`` runs one
backtest (``bot.backtest``) for a trial; ``objective`` scores it from the report's figures;
``study`` runs the trials in worker processes on a shared Optuna storage; ``results`` runs
each fold's best on its test window; ``outputs`` and ``page`` write the files; ``cli`` is
the command.
"""
