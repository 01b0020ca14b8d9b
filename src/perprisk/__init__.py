"""perprisk: an exact clearing and risk engine for leveraged crypto perpetual futures."""

__version__ = "0.1.0"
