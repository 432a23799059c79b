"""The electoral roll, ballots, and the tally."""
