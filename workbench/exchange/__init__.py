"""A local exchange for tests and demos: recorded candles served in Binance's formats (issue 15).

``workbench.exchange.sim`` serves REST klines and the websocket kline stream on 127.0.0.1, with a
clock that advances through the data and optional network faults, so that the real ccxt client
can be pointed at it through its URL override.
"""
