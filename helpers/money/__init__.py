"""Tokens and money: what a request costs before and after it is sent.

- :mod:`.tokens`: the offline provider's own token rule (every offline count uses it);
- :mod:`.cost`: a call's cost from its usage and the price table; :mod:`.labels`: the words
  every status line uses for it;
- :mod:`.budget`: the budget guard (lessons and relay); :mod:`.history`: trimming a
  conversation to its context window.
"""
