"""The SEVERE leaderboard: submission bundles, their validation, an SQLite store and a static site.

``bundle`` writes (``severe submit``) and safely reads bundles; ``validate`` checks one against the registry's
official protocols and recomputes its metrics; ``store`` keeps accepted entries in SQLite; ``board`` joins
them with the published reference entries; ``site`` and ``export`` present the board.
"""
