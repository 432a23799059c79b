"""Public notices (公示): the resolution and the result, their publicity periods and objections."""
