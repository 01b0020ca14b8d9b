"""Risk: the liquidation scanner, the liquidation process, insurance fund, ADL and their policies."""
